//! A small `--flag value` parser for the binaries (no dependency for a handful of flags).

use std::collections::BTreeMap;

/// Parsed `--name value` pairs (a flag may repeat) and `--switch`es.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, Vec<String>>,
}

impl Args {
    /// `known` lists the flags that take a value; `switches` those that do not.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        known: &[&str],
        switches: &[&str],
    ) -> Result<Args, String> {
        let mut parsed = Args::default();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            if switches.contains(&name) {
                parsed.values.entry(name.to_string()).or_default();
            } else if known.contains(&name) {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                parsed
                    .values
                    .entry(name.to_string())
                    .or_default()
                    .push(value);
            } else {
                return Err(format!("unknown flag --{name}"));
            }
        }
        Ok(parsed)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// A number, or `default` when the flag is absent.
    pub fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: {v:?} is not a number")),
            None => Ok(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_values_and_mistakes() {
        let a = Args::parse(
            strings(&["--db", "a.db", "--peer", "x", "--peer", "y", "--quiet"]),
            &["db", "peer", "n"],
            &["quiet"],
        )
        .unwrap();
        assert_eq!(a.get("db"), Some("a.db"));
        assert_eq!(a.all("peer"), ["x", "y"]);
        assert!(a.has("quiet"));
        assert_eq!(a.number("n", 7u32).unwrap(), 7);
        assert!(a.require("n").is_err());
        assert!(Args::parse(strings(&["--db"]), &["db"], &[]).is_err());
        assert!(Args::parse(strings(&["--what", "1"]), &["db"], &[]).is_err());
        assert!(Args::parse(strings(&["stray"]), &["db"], &[]).is_err());
        let bad = Args::parse(strings(&["--n", "x"]), &["n"], &[]).unwrap();
        assert!(bad.number::<u32>("n", 1).is_err());
    }
}
