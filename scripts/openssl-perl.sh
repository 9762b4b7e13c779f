#!/bin/sh
# The perl that openssl-src runs OpenSSL's Configure with (OPENSSL_SRC_PERL, set in
# .cargo/config.toml). It passes everything through and, for Configure, leaves out the
# algorithms and protocols SQLCipher never calls: witan's library only needs OpenSSL for
# SQLCipher's page encryption (AES-256-CBC, HMAC-SHA512, PBKDF2 and the random generator).
# Without them the default provider no longer pulls in elliptic curves, post-quantum
# signatures and KEMs, TLS and the rest (docs/bench.md, workload (f)).
if [ "$1" = "./Configure" ]; then
  shift
  exec perl ./Configure "$@" \
    no-ssl no-tls no-dtls no-quic no-srp no-psk no-srtp no-nextprotoneg no-ct no-ocsp \
    no-cms no-cmp no-ts no-http \
    no-ec no-ecx no-ec2m no-sm2 no-dh no-dsa no-ml-dsa no-ml-kem no-slh-dsa no-lms \
    no-aria no-bf no-cast no-chacha no-poly1305 no-des no-rc2 no-rc4 no-seed no-sm4 \
    no-ocb no-siv no-blake2 no-sm3 no-md4 no-rmd160 no-whirlpool no-siphash \
    no-scrypt no-argon2
fi
exec perl "$@"
