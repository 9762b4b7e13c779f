// ShrunkTestRunner — runs the JVM host tests from a jar that R8 has shrunk as an app would
// (scripts/test-r8.sh).
//
// JUnit cannot run the shrunk tests: it finds tests by their @Test annotations, and whether
// R8 keeps annotations is exactly what the check is about (an app that keeps none must still
// work). So the tests are found in the unshrunk tests jar, in a class loader of their own,
// and the methods of the same names are called on the shrunk classes, each on a new
// instance as JUnit does. The entry-point rules keep those class and method names.
//
// usage: java -cp <runner>:<shrunk.jar>:<test framework jars> ShrunkTestRunner \
//            <unshrunk tests jar> <class path to load the unshrunk tests>
// Prints one line per test and `r8: N passed, N failed`; exits 1 when a test failed or none ran.
// A @Test method that returns a value counts as failed: JUnit Jupiter silently skips such a
// method (a Kotlin `fun x() = runBlocking { ... }` whose block ends in an expression), so
// scripts/test-kotlin.sh would never have run it.

import java.io.File;
import java.lang.annotation.Annotation;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

public final class ShrunkTestRunner {
    private static final String TEST_ANNOTATION = "org.junit.jupiter.api.Test";

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: ShrunkTestRunner <tests jar> <class path of the unshrunk tests>");
            System.exit(2);
        }
        List<String[]> tests = discover(args[0], args[1]);
        int passed = 0;
        int failed = 0;
        for (String[] test : tests) {
            String name = test[0] + "." + test[1];
            long start = System.nanoTime();
            if (!test[2].equals("void")) {
                failed++;
                System.out.printf("FAIL %s%n     returns %s, so JUnit does not run it; make it return Unit%n", name, test[2]);
                continue;
            }
            try {
                Class<?> shrunk = Class.forName(test[0]);
                Object instance = shrunk.getDeclaredConstructor().newInstance();
                shrunk.getMethod(test[1]).invoke(instance);
                passed++;
                System.out.printf("ok   %s (%d ms)%n", name, (System.nanoTime() - start) / 1_000_000);
            } catch (Throwable t) {
                failed++;
                System.out.printf("FAIL %s%n", name);
                describe(t instanceof InvocationTargetException ? t.getCause() : t);
            }
        }
        System.out.printf("r8: %d passed, %d failed%n", passed, failed);
        System.exit(failed == 0 && passed > 0 ? 0 : 1);
    }

    /** Test methods of the unshrunk jar, as {class name, method name, return type}, sorted. */
    private static List<String[]> discover(String testsJar, String classPath) throws Exception {
        String[] parts = classPath.split(File.pathSeparator);
        URL[] urls = new URL[parts.length + 1];
        urls[0] = new File(testsJar).toURI().toURL();
        for (int i = 0; i < parts.length; i++) {
            urls[i + 1] = new File(parts[i]).toURI().toURL();
        }
        List<String[]> found = new ArrayList<>();
        try (URLClassLoader loader = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader());
             JarFile jar = new JarFile(testsJar)) {
            Enumeration<JarEntry> entries = jar.entries();
            while (entries.hasMoreElements()) {
                String entry = entries.nextElement().getName();
                if (!entry.endsWith(".class") || entry.contains("$") || entry.startsWith("META-INF/")) {
                    continue;
                }
                String className = entry.substring(0, entry.length() - 6).replace('/', '.');
                Class<?> c = Class.forName(className, false, loader);
                for (Method m : c.getDeclaredMethods()) {
                    if (isTest(m)) {
                        found.add(new String[] {className, m.getName(), m.getReturnType().getName()});
                    }
                }
            }
        }
        found.sort((a, b) -> (a[0] + "." + a[1]).compareTo(b[0] + "." + b[1]));
        return found;
    }

    private static boolean isTest(Method m) {
        for (Annotation a : m.getDeclaredAnnotations()) {
            if (a.annotationType().getName().equals(TEST_ANNOTATION)) {
                return true;
            }
        }
        return false;
    }

    /** The exception and its causes, one line each, with the innermost frames that matter. */
    private static void describe(Throwable t) {
        String indent = "     ";
        for (int depth = 0; t != null && depth < 6; depth++, t = t.getCause()) {
            System.out.printf("%s%s%n", indent, t);
            StackTraceElement[] frames = t.getStackTrace();
            for (int i = 0; i < Math.min(3, frames.length); i++) {
                System.out.printf("%s    at %s%n", indent, frames[i]);
            }
            indent += "  ";
        }
    }
}
