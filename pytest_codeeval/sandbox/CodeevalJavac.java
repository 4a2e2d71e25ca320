// javac for a group of units in one JVM (pytest-codeeval's sandbox, compiled.py).
//
// A JVM and a cold javac cost about 0.8 CPU seconds; the same javac, warm, compiles a
// MultiPL-E program in about 0.1. This program calls javac in-process once per unit, with the
// arguments of that unit's own javac command line (less the launcher's -J flags, which are this
// JVM's), and writes each unit's result into the unit's directory as soon as it is known:
//
//     <exit status> <process CPU ns> <wall ns> <bytes dropped>\n<diagnostics, at most KEEP bytes>
//
// Usage: CodeevalJavac KEEP RESULT_NAME (DIR ARGC ARG...)...
//
// The sandbox trusts a result only when it is clean (exit status 0 or 1, and the unit's CPU
// time well under the compile limit); any other unit, and every unit without a result (this
// JVM was killed), is compiled again on its own with the javac launcher, as it would have been.

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

public final class CodeevalJavac {
    private CodeevalJavac() {}

    /** The first {@code limit} bytes written, and how many more were not kept. */
    static final class Kept extends OutputStream {
        final ByteArrayOutputStream data = new ByteArrayOutputStream();
        final int limit;
        long dropped;

        Kept(int limit) {
            this.limit = limit;
        }

        @Override
        public void write(int b) {
            if (data.size() < limit) {
                data.write(b);
            } else {
                dropped++;
            }
        }

        @Override
        public void write(byte[] b, int off, int len) {
            int room = Math.max(0, Math.min(len, limit - data.size()));
            data.write(b, off, room);
            dropped += len - room;
        }
    }

    public static void main(String[] args) throws Exception {
        int keep = Integer.parseInt(args[0]);
        String name = args[1];
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        int i = 2;
        while (i < args.length) {
            String dir = args[i++];
            int n = Integer.parseInt(args[i++]);
            String[] unit = Arrays.copyOfRange(args, i, i + n);
            i += n;
            Kept out = new Kept(keep);
            long cpu = os.getProcessCpuTime();
            long wall = System.nanoTime();
            int status;
            // javac writes every diagnostic to one writer here, as the launcher writes them all
            // to stderr (its stdout carries only -help and -version)
            try (PrintWriter writer = new PrintWriter(out, true)) {
                status = com.sun.tools.javac.Main.compile(unit, writer);
            } catch (Throwable t) {
                status = -1;
            }
            cpu = os.getProcessCpuTime() - cpu;
            wall = System.nanoTime() - wall;
            try (FileOutputStream f = new FileOutputStream(dir + "/" + name)) {
                f.write((status + " " + cpu + " " + wall + " " + out.dropped + "\n").getBytes(StandardCharsets.US_ASCII));
                out.data.writeTo(f);
            }
        }
    }
}
