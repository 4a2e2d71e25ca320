"""Languages other than Python: how a sample becomes files, a compile step and a run step.

One small class per language (a :class:`LanguageRunner`) says

* which executables it needs and the Debian package of each (a missing one skips the benchmark
  with the install hint),
* how the program (prompt + completion) and the benchmark's test driver are assembled into
  files, with a confirmation appended where the test driver finishes: it writes
  ``PASS <token>`` to a verdict file, so an early ``exit(0)`` is not a pass (as for Python, a
  pass is only ever that confirmation). The token and the verdict file's path come from the
  run's environment (``CODEEVAL_TOKEN``, ``CODEEVAL_VERDICT``), never from the files: a
  program assembles to the same bytes for every sample, so identical samples compile once,
* the compile (or syntax-check) command, the run command and the environment,
* how to read a failure: the compiler's error line, the assertion line, out-of-memory messages,
* where each line of the assembled source came from (:meth:`LanguageRunner.layout`: the
  program, the problem's test driver, or the runner's own confirmation), so that a failure
  report quotes the line a diagnostic cites.

The sandbox's supervisor (:mod:`pytest_codeeval.sandbox.compiled`) runs both steps under the
same isolation and limits as Python samples. Finding and preparing toolchains (a read-only Go
build cache, a C++ precompiled header) happens in the plugin's process, which has the user's
``PATH``; the resolved absolute paths travel to the fork server, whose ``PATH`` is minimal.

Standard library only, and nothing imported at module level that a fork would pay for.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, ClassVar

VERDICT_FILE = ".codeeval-verdict"
# The run step's environment: where the confirmation writes, and the token it writes there
ENV_VERDICT, ENV_TOKEN = "CODEEVAL_VERDICT", "CODEEVAL_TOKEN"
# CPU seconds for the compile step (apart from the run's limit): javac and go test -c take
# ~1 s, g++ without the precompiled header ~2 s, rustc ~0.3 s.
COMPILE_TIMEOUT = 30.0
RUN_TIMEOUT = 10.0  # CPU seconds for the run step, the benchmarks' default
EXEC_FAILED = 127  # exit status of a step whose program could not be executed


class ToolchainMissing(Exception):
    """A language's compiler or runtime is not installed; the message names the package."""


class AssemblyError(Exception):
    """The test driver does not have the shape this language's runner expects."""


def _before_last_brace(text: str, code: str) -> str:
    """``code`` inserted before the last ``}`` of ``text``: the end of the test driver's main."""
    at = text.rfind("}")
    if at < 0:
        raise AssemblyError("the test driver has no closing brace to confirm before")
    return text[:at] + code + text[at:]


# Where a line of an assembled source came from (Layout.origins)
PROGRAM, TESTS, HARNESS = "program", "tests", "harness"


@dataclass(frozen=True)
class Layout:
    """The source file a sample's diagnostics cite, line by line as they number it, with the
    origin of each line: ``(PROGRAM, n)`` (line n of prompt + completion), ``(TESTS, n)`` (line
    n of the problem's test driver) or ``(HARNESS, n)`` (what the runner added: its
    confirmation). ``others``: the assembly's other files, all the runner's."""

    file: str
    lines: tuple[str, ...]
    origins: tuple[tuple[str, int], ...]
    others: frozenset[str] = frozenset()

    def origin(self, line: int) -> tuple[str, int] | None:
        """Where line ``line`` (1-based, as a diagnostic numbers it) came from; None past the end."""
        return self.origins[line - 1] if 1 <= line <= len(self.origins) else None


def _driver_origins(tests: str, driver: str) -> list[tuple[str, int]]:
    """For each line of ``driver`` (the test driver as the runner assembled it), the line of
    ``tests`` it is, or HARNESS for lines the runner added. Lines the runner rewrote in place
    (Java's renamed main, the line whose last brace Rust's confirmation precedes) keep the
    tests' line they stand for."""
    import difflib  # only the plugin's process gets here, for a failure report

    ours, theirs = tests.split("\n"), driver.split("\n")
    origins: list[tuple[str, int]] = [(HARNESS, j + 1) for j in range(len(theirs))]
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal" or op == "replace":
            for k in range(min(i2 - i1, j2 - j1)):
                origins[j1 + k] = (TESTS, i1 + k + 1)
    return origins


class LanguageRunner:
    """What the sandbox needs to know to judge programs of one language.

    Subclasses set the class attributes and implement :meth:`files`, :meth:`compile_argv` (or
    leave it None for none) and :meth:`run_argv`. ``tools`` maps executable names to absolute
    paths (plus anything :meth:`prepare` added), ``workdir`` is the sample's private directory.
    """

    name: ClassVar[str]  # the MultiPL-E language code: "cpp", "rs", ...
    display: ClassVar[str]  # for people: "C++"
    fence: ClassVar[str]  # markdown code fence tag, for instruct prompts
    packages: ClassVar[dict[str, str]]  # executable -> Debian package that provides it
    check_outcome: ClassVar[str] = "compile_error"  # "syntax_error" where the step only parses
    compile_timeout: ClassVar[float] = COMPILE_TIMEOUT
    # Runtimes that reserve far more virtual memory than they use (the JVM, V8, Go) cannot run
    # under RLIMIT_AS at the memory limit: they get RLIMIT_DATA (writable memory) instead.
    reserves_address_space: ClassVar[bool] = False
    abort_is_failure: ClassVar[bool] = False  # SIGABRT is how a failed assert() ends (C++)
    compile_error_patterns: ClassVar[tuple[str, ...]] = (r"error",)
    failure_patterns: ClassVar[tuple[str, ...]] = ()  # the line that says why a test failed
    oom_patterns: ClassVar[tuple[str, ...]] = ()
    source: ClassVar[str]  # the file holding the program and the test driver, as diagnostics cite it
    # what the compile step leaves in the directory that the run never needs (a build cache):
    # not carried from a group's compile into each sample's fresh directory
    compile_leftovers: ClassVar[frozenset[str]] = frozenset()

    # -- in the plugin's process -----------------------------------------------------------------
    def find(self) -> dict[str, str]:
        """Absolute paths of the executables, from the user's PATH; raises ToolchainMissing."""
        tools = {}
        for exe, package in self.packages.items():
            path = shutil.which(exe)
            if path is None:
                raise ToolchainMissing(
                    f"{self.display} toolchain not found: `{exe}` is not on PATH; install the Debian "
                    f"package {package} (apt-get install {package})")
            tools[exe] = path
        return tools

    def prepare(self, tools: dict[str, str], cache: str) -> dict[str, str]:
        """Build what makes every sample cheaper, once per toolchain version, under ``cache``;
        returns ``tools`` plus the paths of what was built. Never required: a failure here only
        makes samples slower."""
        return tools

    # -- in the sample's supervisor -----------------------------------------------------------------
    def files(self, program: str, tests: str) -> dict[str, str]:
        """File name -> text: the program, the test driver, and the confirmation that writes
        ``PASS <token>`` once the tests returned, to the file named by the environment variable
        ENV_VERDICT, the token being ENV_TOKEN's value (both set for the run step only)."""
        raise NotImplementedError

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str] | None:
        return None

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def batches(self, tools: dict[str, str]) -> bool:
        """Whether :meth:`batch_compile_argv` can compile several units in one process with these
        tools. Where it cannot, only byte-identical programs gain from being judged as a group
        (compiled once); distinct ones are spread over the worker slots one by one."""
        return False

    def batch_compile_argv(self, tools: dict[str, str], units: list[tuple[str, dict[str, str]]],
                           limits: dict[str, Any], result: str) -> list[str] | None:
        """One command that compiles every unit (``(workdir, files)``, each as
        :meth:`compile_argv` would) in one process, writing each unit's result to the file
        ``result`` in its directory (the format of ``CodeevalJavac.java``); None where the
        language has no such compiler (then each unit is compiled alone)."""
        return None

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        """Variables beyond PATH, LANG, HOME, TMPDIR, PWD (which point into ``workdir``)."""
        return {}

    # -- in the plugin's process, for failure reports ------------------------------------------------
    def layout(self, program: str, tests: str) -> Layout | None:
        """Where each line of ``source`` comes from, assembled as :meth:`files` assembles it
        (the same for every sample); None when the assembly does not
        have the shape ``program + "\\n" + driver`` or cannot be made."""
        try:
            files = self.files(program, tests)
        except AssemblyError:
            return None
        text = files.get(self.source)
        head = program + "\n"
        if text is None or not text.startswith(head):
            return None
        origins = [(PROGRAM, i + 1) for i in range(program.count("\n") + 1)]
        origins += _driver_origins(tests, text[len(head):])
        lines = tuple(text.split("\n"))
        if len(lines) != len(origins):  # never expected: then no line is quoted at all
            return None
        return Layout(self.source, lines, tuple(origins), frozenset(files) - {self.source})

    def failing_case(self, tests: str, output: str) -> tuple[int, str] | None:
        """(line of ``tests``, name) of the test case that failed, where the run's ``output``
        (stdout and stderr) names a case whose line no diagnostic cites; else None."""
        return None


# -- the languages ---------------------------------------------------------------------------------
class Cpp(LanguageRunner):
    name, display, fence = "cpp", "C++", "cpp"
    packages = {"g++": "g++"}
    abort_is_failure = True  # a failed assert() and an uncaught exception abort
    compile_error_patterns = (r"error:",)
    failure_patterns = (r"Assertion .* failed", r"terminate called")
    oom_patterns = (r"std::bad_alloc",)
    source = "solution.cpp"
    STDCXX = re.compile(r"^\s*#\s*include\s*<bits/stdc\+\+\.h>", re.M)

    # The run's environment read through `environ` and GCC's builtins: <cstdlib> from the command
    # line could change which overloads (abs, div) a program without it sees
    CONFIRM = (f'    {{ extern char** environ; const char* codeeval_v = 0; const char* codeeval_t = ""; '
               f'for (char** codeeval_e = environ; codeeval_e && *codeeval_e; ++codeeval_e) {{ '
               f'if (!__builtin_strncmp(*codeeval_e, "{ENV_VERDICT}=", {len(ENV_VERDICT) + 1})) '
               f'codeeval_v = *codeeval_e + {len(ENV_VERDICT) + 1}; '
               f'else if (!__builtin_strncmp(*codeeval_e, "{ENV_TOKEN}=", {len(ENV_TOKEN) + 1})) '
               f'codeeval_t = *codeeval_e + {len(ENV_TOKEN) + 1}; }}\n'
               '      std::FILE* codeeval_f = codeeval_v ? std::fopen(codeeval_v, "w") : 0; '
               'if (codeeval_f) { std::fprintf(codeeval_f, "PASS %s\\n", codeeval_t); std::fclose(codeeval_f); } }\n')

    def files(self, program: str, tests: str) -> dict[str, str]:
        return {self.source: program + "\n" + _before_last_brace(tests, self.CONFIRM)}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        argv = [tools["g++"], "-std=c++17"]  # MultiPL-E's flags
        if "pch" in tools and self.STDCXX.search(files[self.source]):
            # the precompiled <bits/stdc++.h>, included first: the file's own includes of it
            # (and of <assert.h>) are then no-ops. ~0.4 s instead of ~2 s a sample.
            argv += ["-include", "bits/stdc++.h", "-I", tools["pch"]]
        # <cstdio> for the confirmation, from the command line: a line of the file would shift
        # every line the compiler and assert() cite, and "#line" would make g++ quote the wrong ones
        return argv + ["-include", "cstdio", "-o", os.path.join(workdir, "solution"), os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [os.path.join(workdir, "solution")]

    def prepare(self, tools: dict[str, str], cache: str) -> dict[str, str]:
        return {**tools, **_prepared("cpp", tools["g++"], cache, _build_stdcxx_pch)}


class Rust(LanguageRunner):
    name, display, fence = "rs", "Rust", "rust"
    packages = {"rustc": "rustc", "cc": "gcc"}  # rustc links with the system's cc
    compile_error_patterns = (r"^error",)
    failure_patterns = (r"panicked at", r"^error: ")
    oom_patterns = (r"memory allocation of \d+ bytes failed",)
    source = "solution.rs"

    def find(self) -> dict[str, str]:
        tools = super().find()
        # rustup's proxy needs the user's HOME to pick a toolchain: use the real compiler
        sysroot = _output([tools["rustc"], "--print", "sysroot"])
        if not sysroot:  # e.g. rustup's proxy with no default toolchain for this HOME
            raise ToolchainMissing(f"Rust toolchain unusable: `{tools['rustc']} --print sysroot` failed; install "
                                   "the Debian package rustc (apt-get install rustc) or set a rustup default")
        real = os.path.join(sysroot, "bin", "rustc")
        if os.access(real, os.X_OK):
            tools["rustc"] = real
        # Recent rustc links through its own rust-lld, found by gcc with access(2), which
        # ignores capabilities: under a root-only directory (rustup in /root) samples running
        # as their own uid cannot find it. The system linker then does the job.
        if not _reachable_by_others(sysroot) and \
                _output([tools["rustc"], "-C", "linker-features=-lld", "--print", "sysroot"]):
            tools["linker_flags"] = "-C linker-features=-lld"
        return tools

    # no macro (a program may define its own format!), every path from std
    CONFIRM = (f'    {{ let mut codeeval_s = std::string::String::from("PASS "); '
               f'codeeval_s.push_str(&std::env::var("{ENV_TOKEN}").unwrap()); codeeval_s.push(\'\\n\'); '
               f'std::fs::write(std::env::var_os("{ENV_VERDICT}").unwrap(), codeeval_s).unwrap(); }}\n')

    def files(self, program: str, tests: str) -> dict[str, str]:
        return {self.source: program + "\n" + _before_last_brace(tests, self.CONFIRM)}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # MultiPL-E's command: rustc's default edition, no optimization
        return [tools["rustc"], *tools.get("linker_flags", "").split(), "-o", os.path.join(workdir, "solution"),
                os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [os.path.join(workdir, "solution")]


JAVATUPLES = ("/usr/share/java/javatuples.jar",)  # Debian's libjavatuples-java


class Java(LanguageRunner):
    name, display, fence = "java", "Java", "java"
    packages = {"javac": "default-jdk", "java": "default-jdk"}
    reserves_address_space = True  # 1 GiB of compressed class space alone
    compile_error_patterns = (r"error:",)
    failure_patterns = (r"^Exception in thread", r"java\.lang\.\w+(Error|Exception)")
    oom_patterns = (r"java\.lang\.OutOfMemoryError",)
    source = "Problem.java"
    MAIN = "public static void main(String[] args)"
    # JVM flags that change speed, not meaning: one GC thread, no /tmp/hsperfdata files
    JVM = ("-XX:+UseSerialGC", "-XX:-UsePerfData", "-XX:ActiveProcessorCount=2")

    def find(self) -> dict[str, str]:
        tools = super().find()
        jar = next((p for p in JAVATUPLES if os.path.isfile(p)), None)
        if jar is None:  # every MultiPL-E Java prompt imports org.javatuples
            raise ToolchainMissing("Java's javatuples library not found (MultiPL-E's prompts import it); install "
                                   "the Debian package libjavatuples-java (apt-get install libjavatuples-java)")
        tools["javatuples"] = jar
        return tools

    CONFIRM = (
        "\nclass CodeevalMain {\n"
        "    public static void main(String[] args) throws Exception {\n"
        "        Problem.codeevalTestsMain(args);\n"
        f"        java.nio.file.Files.write(java.nio.file.Paths.get(java.lang.System.getenv(\"{ENV_VERDICT}\")), "
        f"(\"PASS \" + java.lang.System.getenv(\"{ENV_TOKEN}\") + \"\\n\").getBytes());\n"
        "    }\n}\n")

    def files(self, program: str, tests: str) -> dict[str, str]:
        if self.MAIN not in tests:
            raise AssemblyError(f"the Java test driver has no `{self.MAIN}`")
        tests = tests.replace(self.MAIN, "public static void codeevalTestsMain(String[] args)", 1)
        return {self.source: program + "\n" + tests + self.CONFIRM}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # javac's own JVM: C1 only halves its CPU time on one small file
        jvm = [f"-J{f}" for f in (*self.JVM, "-XX:TieredStopAtLevel=1", f"-XX:MaxRAM={int(limits['memory_bytes'])}",
                                  f"-Djava.io.tmpdir={workdir}")]
        return [tools["javac"], *jvm, "-encoding", "UTF8", "-cp", tools["javatuples"],
                "-d", os.path.join(workdir, "classes"), os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        # MaxRAM: size the heap by the sample's memory limit, not the machine's memory, so that
        # running out is an OutOfMemoryError (oom) rather than a failed commit (a crash)
        return [tools["java"], "-ea", *self.JVM, f"-XX:MaxRAM={int(limits['memory_bytes'])}",
                f"-Djava.io.tmpdir={workdir}",
                "-cp", f"{os.path.join(workdir, 'classes')}:{tools['javatuples']}", "CodeevalMain"]

    def batches(self, tools: dict[str, str]) -> bool:
        return "javac_batch" in tools and "javac_vm" in tools

    def batch_compile_argv(self, tools: dict[str, str], units: list[tuple[str, dict[str, str]]],
                           limits: dict[str, Any], result: str) -> list[str] | None:
        # CodeevalJavac (prepared): each unit's own javac arguments, less the launcher's -J
        # flags, which become this JVM's (the first unit's; they differ only in tmpdir)
        if not self.batches(tools) or not units:
            return None
        first = self.compile_argv(tools, units[0][0], units[0][1], limits)
        jvm = [arg[2:] for arg in first if arg.startswith("-J")]
        if "javac_batch_cds" in tools:  # javac's classes mapped, not loaded: ~0.2 s a JVM
            jvm.append(f"-XX:SharedArchiveFile={tools['javac_batch_cds']}")
        argv = [tools["javac_vm"], *jvm, "-cp", tools["javac_batch"], "CodeevalJavac",
                str(int(limits["output_bytes"])), result]
        for workdir, files in units:
            unit = [arg for arg in self.compile_argv(tools, workdir, files, limits)[1:] if not arg.startswith("-J")]
            argv += [workdir, str(len(unit)), *unit]
        return argv

    def prepare(self, tools: dict[str, str], cache: str) -> dict[str, str]:
        built = _prepared("java", tools["javac"], cache, _build_javac_batch)
        vm = os.path.join(os.path.dirname(os.path.realpath(tools["javac"])), "java")
        if "javac_batch" not in built or not os.access(vm, os.X_OK):
            return tools
        built["javac_vm"] = vm  # the java of javac's own JDK: the one the archive was made by
        archive = _javac_class_data(vm, built["javac_batch"], tools["javatuples"])
        if archive:
            built["javac_batch_cds"] = archive
        return {**tools, **built}


class Go(LanguageRunner):
    name, display, fence = "go", "Go", "go"
    packages = {"go": "golang-go"}
    reserves_address_space = True
    compile_error_patterns = (r"\.go:\d+:\d+: ", r"^#", r"error")
    failure_patterns = (r"_test\.go:\d+: ", r"^panic: ", r"^--- FAIL")
    oom_patterns = (r"fatal error: runtime: out of memory",)
    source = "solution_test.go"  # MultiPL-E's "go_test.go": the tests are a Go test
    compile_leftovers = frozenset({".gocache", "go"})  # GOCACHE (when none was prepared), GOPATH
    PACKAGE = re.compile(r"^package\s+(\w+)", re.M)
    # MultiPL-E's Go drivers: a table of cases, one a line, run as subtests "test num % d"
    # (reported as test_num__<i>); their one t.Errorf line is the same in every problem
    FAILED_CASE = re.compile(r"^\s*--- FAIL: \S+/test_num__(\d{1,6}) ", re.M)
    CASES = re.compile(r"^\s*tests\s*:=\s*\[\]test\s*\{\s*$")
    CASE = re.compile(r"^\s*\{\s*actual\s*:")

    def failing_case(self, tests: str, output: str) -> tuple[int, str] | None:
        found = self.FAILED_CASE.search(output)
        if found is None:
            return None
        wanted, seen, lines = int(found.group(1)), -1, tests.split("\n")
        start = next((i for i, line in enumerate(lines) if self.CASES.match(line)), None)
        if start is None:
            return None
        for i in range(start + 1, len(lines)):
            if not self.CASE.match(lines[i]):
                return None  # the table ended (or has a shape we do not know) before that case
            seen += 1
            if seen == wanted:
                return i + 1, f"test_num__{wanted}"
        return None

    def files(self, program: str, tests: str) -> dict[str, str]:
        package = self.PACKAGE.search(program)
        if package is None:
            raise AssemblyError("the Go program has no package clause")
        # a second file of the same package, with its own imports: TestMain confirms after the
        # tests passed (os.Exit(0) inside a test is already a failure for Go's test runner)
        main = (f"package {package.group(1)}\n\nimport (\n\t\"os\"\n\t\"testing\"\n)\n\n"
                "func TestMain(m *testing.M) {\n\tcode := m.Run()\n\tif code == 0 {\n"
                f"\t\tos.WriteFile(os.Getenv(\"{ENV_VERDICT}\"), []byte(\"PASS \"+os.Getenv(\"{ENV_TOKEN}\")+\"\\n\"), 0o600)\n"
                "\t}\n\tos.Exit(code)\n}\n")
        return {self.source: program + "\n" + tests, "codeeval_main_test.go": main}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # `go test -c` builds the test binary and runs go vet's checks, as `go test` does. -s -w:
        # no symbol table or DWARF (a third of the link's time); panics and t.Errorf still cite
        # file:line (from the pc-line table, which stays)
        return [tools["go"], "test", "-c", "-ldflags=-s -w", "-o", os.path.join(workdir, "solution.test"), *sorted(files)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [os.path.join(workdir, "solution.test")]

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        return {
            # the prepared cache is read-only to samples (their uid, or the read-only root):
            # they reuse go vet's facts about the standard library but cannot poison them
            "GOCACHE": tools.get("gocache") or os.path.join(workdir, ".gocache"),
            "GOPATH": os.path.join(workdir, "go"),
            "GOTOOLCHAIN": "local", "GOTELEMETRY": "off", "GOFLAGS": "", "GOPROXY": "off",
            "GOMAXPROCS": "2",  # a sample is one worker slot: its threads should not crowd the others
        }

    def prepare(self, tools: dict[str, str], cache: str) -> dict[str, str]:
        return {**tools, **_prepared("go", tools["go"], cache, _build_go_cache)}


class JavaScript(LanguageRunner):
    name, display, fence = "js", "JavaScript", "javascript"
    packages = {"node": "nodejs"}
    check_outcome = "syntax_error"  # node --check parses, nothing more
    reserves_address_space = True
    compile_error_patterns = (r"SyntaxError",)
    # node prints the throwing line of node:assert first: the error's own line says more
    failure_patterns = (r"^AssertionError", r"^\w*Error\b", r"AssertionError")
    oom_patterns = (r"heap out of memory", r"Fatal process out of memory")
    source = "solution.js"

    # globalThis.process: a program may define its own `process`
    CONFIRM = (f"\n;require('fs').writeFileSync(globalThis.process.env.{ENV_VERDICT}, "
               f"'PASS ' + globalThis.process.env.{ENV_TOKEN} + '\\n');\n")

    def files(self, program: str, tests: str) -> dict[str, str]:
        return {self.source: program + "\n" + tests + self.CONFIRM}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["node"], "--check", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["node"], os.path.join(workdir, self.source)]


class Bash(LanguageRunner):
    name, display, fence = "sh", "Bash", "bash"
    packages = {"bash": "bash"}
    check_outcome = "syntax_error"  # bash -n parses, nothing more
    compile_error_patterns = (r"syntax error",)
    source = "solution.sh"
    # A failed test ends the driver (`set -e`) without a word: this trap, set on the driver's
    # own `set -e` line (no line moves), says at which line. errtrace (-E) carries it into the
    # driver's run_test function; it speaks only in the main shell, never in the
    # $(candidate ...) subshells where the program's own commands may fail as a matter of
    # course. Display only: it changes no status and decides no label.
    SET_E = re.compile(r"^set -e[ \t]*$", re.M)
    TRAP = ("; trap '__codeeval_status=$?; [[ $BASH_SUBSHELL == 0 ]] && printf \"%s: line %s: a command failed "
            "(status %s)\\n\" \"${BASH_SOURCE[0]##*/}\" \"$LINENO\" \"$__codeeval_status\" >&2' ERR; set -E")

    def files(self, program: str, tests: str) -> dict[str, str]:
        tests = self.SET_E.sub(lambda m: m.group(0) + self.TRAP, tests, count=1)
        # the test driver runs under `set -e`: a failed test exits before the last line
        return {self.source: program + "\n" + tests + f"\nprintf 'PASS %s\\n' \"${ENV_TOKEN}\" > \"${ENV_VERDICT}\"\n"}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["bash"], "-n", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["bash"], os.path.join(workdir, self.source)]


def _tool_missing(display: str, exe: str, what: str) -> ToolchainMissing:
    """The skip message of a language whose toolchain has no Debian package."""
    return ToolchainMissing(f"{display} toolchain not found: `{exe}` is not on PATH; {what}")


def _check_module(argv: list[str], display: str, package: str, what: str) -> None:
    """Raises ToolchainMissing when ``argv`` (loading a library the tests need) fails."""
    import subprocess  # only the plugin's process gets here

    try:
        ok = subprocess.run(argv, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        raise ToolchainMissing(f"{display}'s {what} not found (MultiPL-E's tests use it); install the Debian "
                               f"package {package} (apt-get install {package})")


class Lua(LanguageRunner):
    name, display, fence = "lua", "Lua", "lua"
    packages = {"lua": "lua5.4", "luac": "lua5.4"}
    check_outcome = "syntax_error"  # luac -p parses, nothing more
    compile_error_patterns = (r"^luac: ",)
    # luaunit reports a failed assertion as "solution.lua:12: expected: 1, actual: 10"
    failure_patterns = (r"\.lua:\d+: ", r"^lua: ")
    oom_patterns = (r"not enough memory",)
    source = "solution.lua"
    # every MultiPL-E Lua driver ends by running luaunit and exiting with its failure count
    RUN = re.compile(r"^os\.exit\(lu\.LuaUnit\.run\(\)\)[ \t]*$", re.M)

    def find(self) -> dict[str, str]:
        tools = super().find()
        _check_module([tools["lua"], "-e", "require('luaunit')"], self.display, "lua-unit", "luaunit")
        return tools

    def files(self, program: str, tests: str) -> dict[str, str]:
        if not self.RUN.search(tests):
            raise AssemblyError("the Lua test driver does not end with os.exit(lu.LuaUnit.run())")
        # on the driver's own line (no line moves): confirm only when luaunit counted no failure
        confirm = (f"local codeeval_failures = lu.LuaUnit.run(); if codeeval_failures == 0 then "
                   f"local f = assert(io.open(os.getenv('{ENV_VERDICT}'), 'w')); f:write('PASS ' .. os.getenv('{ENV_TOKEN}') .. '\\n'); f:close() "
                   f"end; os.exit(codeeval_failures)")
        return {self.source: program + "\n" + self.RUN.sub(lambda m: confirm, tests, count=1)}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["luac"], "-p", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["lua"], os.path.join(workdir, self.source)]


class Php(LanguageRunner):
    name, display, fence = "php", "PHP", "php"
    packages = {"php": "php-cli"}
    check_outcome = "syntax_error"  # php -l parses, nothing more
    compile_error_patterns = (r"(Parse|Fatal) error",)
    failure_patterns = (r"PHP Fatal error", r"Fatal error", r"Uncaught")
    oom_patterns = (r"Allowed memory size of \d+ bytes exhausted",)
    source = "solution.php"

    def files(self, program: str, tests: str) -> dict[str, str]:
        confirm = f"\nfile_put_contents(getenv('{ENV_VERDICT}'), 'PASS ' . getenv('{ENV_TOKEN}') . \"\\n\");\n"
        return {self.source: program + "\n" + tests + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["php"], "-l", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        # no php.ini memory cap beneath the sandbox's own limit; errors on stderr, once
        return [tools["php"], "-d", "memory_limit=-1", "-d", "display_errors=stderr", "-d", "log_errors=0",
                os.path.join(workdir, self.source)]


class Perl(LanguageRunner):
    name, display, fence = "pl", "Perl", "perl"
    packages = {"perl": "perl"}
    check_outcome = "syntax_error"  # perl -c compiles (and runs BEGIN blocks), nothing more
    compile_error_patterns = (r"syntax error", r" at \S+ line \d+")
    failure_patterns = (r" at \S+ line \d+",)  # die's message; a failed test exits 1 silently
    oom_patterns = (r"^Out of memory",)
    source = "solution.pl"

    def find(self) -> dict[str, str]:
        tools = super().find()
        _check_module([tools["perl"], "-MTest::Deep", "-e", "1"], self.display, "libtest-deep-perl",
                      "Test::Deep")
        return tools

    def files(self, program: str, tests: str) -> dict[str, str]:
        # a failed test exits 1 before the driver's end
        confirm = (f"\nopen(my $codeeval_fh, '>', $ENV{{{ENV_VERDICT}}}) or die; print $codeeval_fh \"PASS $ENV{{{ENV_TOKEN}}}\\n\"; "
                   "close($codeeval_fh);\n")
        return {self.source: program + "\n" + tests + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["perl"], "-c", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["perl"], os.path.join(workdir, self.source)]


class Ruby(LanguageRunner):
    name, display, fence = "rb", "Ruby", "ruby"
    packages = {"ruby": "ruby"}
    check_outcome = "syntax_error"  # ruby -c parses, nothing more
    compile_error_patterns = (r"syntax error", r"\.rb:\d+: ")
    failure_patterns = (r"^(Failure|Error): ", r"expected but was", r"\(\w+Error\)")
    oom_patterns = (r"failed to allocate memory \(NoMemoryError\)",)
    source = "solution.rb"

    def find(self) -> dict[str, str]:
        tools = super().find()
        # (loading test-unit alone would run its empty suite at exit, and fail)
        _check_module([tools["ruby"], "-e", "require 'test/unit'; Test::Unit::AutoRunner.need_auto_run = false"],
                      self.display, "ruby-test-unit", "test-unit")
        return tools

    def files(self, program: str, tests: str) -> dict[str, str]:
        # test-unit runs the test case at exit, after anything appended here: run it now instead,
        # and confirm only when it passed
        confirm = ("\nTest::Unit::AutoRunner.need_auto_run = false\n"
                   f"if Test::Unit::AutoRunner.run then File.write(ENV['{ENV_VERDICT}'], \"PASS #{{ENV['{ENV_TOKEN}']}}\\n\") "
                   "else exit 1 end\n")
        return {self.source: program + "\n" + tests + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["ruby"], "-c", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["ruby"], os.path.join(workdir, self.source)]


class R(LanguageRunner):
    name, display, fence = "r", "R", "r"
    packages = {"Rscript": "r-base-core"}
    check_outcome = "syntax_error"  # parse() only
    compile_error_patterns = (r"unexpected", r"^Error")
    failure_patterns = (r"^Error", r"is not TRUE")
    oom_patterns = (r"cannot allocate vector",)
    source = "solution.r"

    def files(self, program: str, tests: str) -> dict[str, str]:
        # a failed stopifnot() ends the script before this line; base:: as a program may define its own
        confirm = (f"\nwriteLines(base::paste0(\"PASS \", base::Sys.getenv(\"{ENV_TOKEN}\")), "
                   f"base::Sys.getenv(\"{ENV_VERDICT}\"))\n")
        return {self.source: program + "\n" + tests + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["Rscript"], "--vanilla", "-e", "invisible(parse(file = commandArgs(TRUE)[1]))",
                os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["Rscript"], "--vanilla", os.path.join(workdir, self.source)]


class TypeScript(LanguageRunner):
    name, display, fence = "ts", "TypeScript", "typescript"
    packages = {"tsc": "node-typescript", "node": "nodejs"}
    reserves_address_space = True  # V8, in tsc as in node
    compile_error_patterns = (r"error TS\d+",)
    failure_patterns = JavaScript.failure_patterns
    oom_patterns = JavaScript.oom_patterns
    source = "solution.ts"

    def files(self, program: str, tests: str) -> dict[str, str]:
        return {self.source: program + "\n" + tests + JavaScript.CONFIRM}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # MultiPL-E's command (a type error fails it, though tsc writes the .js anyway), with a
        # source map: node then cites the .ts file's lines
        return [tools["tsc"], "--target", "esnext", "--sourceMap", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["node"], "--enable-source-maps", os.path.join(workdir, "solution.js")]


class Racket(LanguageRunner):
    name, display, fence = "rkt", "Racket", "racket"
    packages = {"racket": "racket", "raco": "racket"}
    compile_error_patterns = (r"\.rkt:\d+:\d+: ",)  # raco make expands: unbound names are compile errors
    # rackunit's report: FAILURE (with actual:) or ERROR; else an error outside any check
    failure_patterns = (r"^actual: ", r"^(FAILURE|ERROR)$", r"^\w[\w-]*: ")
    oom_patterns = (r"out of memory",)
    source = "solution.rkt"
    REQUIRE = re.compile(r"^\(require rackunit\)[ \t]*$", re.M)

    def files(self, program: str, tests: str) -> dict[str, str]:
        if not self.REQUIRE.search(tests):
            raise AssemblyError("the Racket test driver has no (require rackunit) line")
        # rackunit prints a failed check and goes on: on the driver's own require line (no line
        # moves), a check handler that prints the failure as rackunit does, then exits 1
        handler = ("(require rackunit) (let ([codeeval-handler (current-check-handler)]) "
                   "(current-check-handler (lambda (e) (codeeval-handler e) (exit 1))))")
        confirm = (f"\n(with-output-to-file (getenv \"{ENV_VERDICT}\") (lambda () (display (string-append \"PASS \" "
                   f"(getenv \"{ENV_TOKEN}\") \"\\n\"))) #:exists 'truncate)\n")
        return {self.source: program + "\n" + self.REQUIRE.sub(lambda m: handler, tests, count=1) + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # MultiPL-E runs `racket FILE`, which expands and compiles in memory: the same checks,
        # with compile errors apart from failed tests
        return [tools["raco"], "make", os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["racket"], os.path.join(workdir, self.source)]

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        return {"PLTUSERHOME": workdir, "PLTADDONDIR": os.path.join(workdir, ".racket")}


class Scala(LanguageRunner):
    name, display, fence = "scala", "Scala", "scala"
    packages = {"scalac": "scala", "java": "default-jre"}
    reserves_address_space = True  # the JVM
    compile_error_patterns = (r"\.scala:\d+: error:", r"error")
    failure_patterns = Java.failure_patterns
    oom_patterns = Java.oom_patterns
    source = "solution.scala"
    MAIN = "def main(args: Array[String])"

    def find(self) -> dict[str, str]:
        tools = super().find()
        # the samples run on java with the Scala library beside scalac's (no launcher script)
        home = os.path.dirname(os.path.dirname(os.path.realpath(tools["scalac"])))
        library = os.path.join(home, "lib", "scala-library.jar")
        if not os.path.isfile(library):
            raise ToolchainMissing(f"Scala's library not found at {library}; install the Debian package scala "
                                   "(apt-get install scala)")
        tools["scala-library"] = library
        return tools

    def files(self, program: str, tests: str) -> dict[str, str]:
        if self.MAIN not in tests:
            raise AssemblyError(f"the Scala test driver has no `{self.MAIN}`")
        # renamed in place (as Java's main): CodeevalMain calls it and confirms once it returned
        tests = tests.replace(self.MAIN, "def codeevalTestsMain(args: Array[String])", 1)
        main = ("object CodeevalMain {\n  def main(args: Array[String]): Unit = {\n"
                "    Problem.codeevalTestsMain(args)\n"
                f"    java.nio.file.Files.write(java.nio.file.Paths.get(java.lang.System.getenv(\"{ENV_VERDICT}\")), "
                f"(\"PASS \" + java.lang.System.getenv(\"{ENV_TOKEN}\") + \"\\n\").getBytes(\"UTF-8\"))\n  }}\n}}\n")
        return {self.source: program + "\n" + tests, "CodeevalMain.scala": main}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # the classes go beside the sources (scalac -d wants an existing directory)
        return [tools["scalac"], "-d", workdir, *(os.path.join(workdir, f) for f in sorted(files))]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        # MultiPL-E's `scala -cp DIR Problem`, without the launcher: java with the Scala library
        return [tools["java"], "-ea", *Java.JVM, f"-XX:MaxRAM={int(limits['memory_bytes'])}",
                f"-Djava.io.tmpdir={workdir}",
                "-cp", f"{workdir}:{tools['scala-library']}", "CodeevalMain"]

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        # scalac's launcher passes JAVA_OPTS to its JVM: C1 only, one GC thread, the sample's memory
        return {"JAVA_OPTS": " ".join((*Java.JVM, "-XX:TieredStopAtLevel=1", "-Xss8m",
                                       f"-XX:MaxRAM={int(limits['memory_bytes'])}", f"-Djava.io.tmpdir={workdir}"))}


class CSharp(LanguageRunner):
    name, display, fence = "cs", "C#", "csharp"
    packages = {"mcs": "mono-mcs", "mono": "mono-runtime"}
    reserves_address_space = True  # mono maps far more than it uses
    compile_error_patterns = (r"error CS\d+",)
    failure_patterns = (r"^Debug\.Assert failed", r"Unhandled Exception", r"^\S*Exception")
    oom_patterns = (r"OutOfMemoryException",)
    source = "solution.cs"
    MAIN = "public static void Main(string[] args)"
    # A failed Debug.Assert only prints under mono and the program goes on (MultiPL-E reads its
    # stderr for the listener's words): this listener ends the program instead, with the stack,
    # so that the confirmation after the tests means they all held
    LISTENER = """using System;
using System.Diagnostics;

class CodeevalListener : TraceListener {
    public override void Write(string message) { Console.Error.Write(message); }
    public override void WriteLine(string message) { Console.Error.WriteLine(message); }
    public override void Fail(string message) { Fail(message, null); }
    public override void Fail(string message, string detail) {
        Console.Error.WriteLine("Debug.Assert failed" + (string.IsNullOrEmpty(message) ? "" : ": " + message));
        Console.Error.WriteLine(Environment.StackTrace);
        Environment.Exit(1);
    }
}

static class CodeevalMain {
    static void Main(string[] args) {
        Debug.Listeners.Clear();
        Debug.Listeners.Add(new CodeevalListener());
        Problem.CodeevalTestsMain(args);
        System.IO.File.WriteAllText(System.Environment.GetEnvironmentVariable("CODEEVAL_VERDICT"),
            "PASS " + System.Environment.GetEnvironmentVariable("CODEEVAL_TOKEN") + "\\n");
    }
}
"""

    def files(self, program: str, tests: str) -> dict[str, str]:
        if self.MAIN not in tests:
            raise AssemblyError(f"the C# test driver has no `{self.MAIN}`")
        tests = tests.replace(self.MAIN, "public static void CodeevalTestsMain(string[] args)", 1)
        return {self.source: program + "\n" + tests, "codeeval_main.cs": self.LISTENER}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # MultiPL-E: csc /d:DEBUG -r:System.Numerics.dll (Roslyn's csc is not in Debian; mcs takes
        # the same options). -debug: stack traces then cite solution.cs's lines
        return [tools["mcs"], "-debug", "-d:DEBUG", "-r:System.Numerics.dll",
                f"-out:{os.path.join(workdir, 'solution.exe')}", *(os.path.join(workdir, f) for f in sorted(files))]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["mono"], "--debug", os.path.join(workdir, "solution.exe")]

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        return {"MONO_GC_PARAMS": f"max-heap-size={int(limits['memory_bytes']) // 2}"}


class D(LanguageRunner):
    name, display, fence = "d", "D", "d"
    packages = {"ldc2": "ldc"}
    compile_error_patterns = (r"Error:",)
    failure_patterns = (r"\[unittest\]", r"AssertError", r"^core\.\w+\.\w+Error", r"^\S*Exception@",
                        r"FAILED unittests")
    oom_patterns = (r"OutOfMemoryError", r"Memory allocation failed")
    source = "solution.d"

    def files(self, program: str, tests: str) -> dict[str, str]:
        # the driver is unittest blocks and an empty main(), run after them (--DRT-testmode);
        # an import inside main keeps every line where it was
        confirm = (" { import std.file : codeevalWrite = write; import std.process : codeevalEnv = environment; "
                   f"codeevalWrite(codeevalEnv[\"{ENV_VERDICT}\"], \"PASS \" ~ codeevalEnv[\"{ENV_TOKEN}\"] ~ \"\\n\"); }} ")
        return {self.source: program + "\n" + _before_last_brace(tests, confirm)}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        # MultiPL-E's `rdmd -unittest FILE` compiles (DMD, no optimization) and runs; rdmd is not
        # in Debian: LDC without optimization, the same language and druntime
        return [tools["ldc2"], "-unittest", f"-od={workdir}", f"-of={os.path.join(workdir, 'solution')}",
                os.path.join(workdir, self.source)]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        # druntime runs the unittests, then main only when asked to (the confirmation is there)
        return [os.path.join(workdir, "solution"), "--DRT-testmode=run-main"]


class Julia(LanguageRunner):
    name, display, fence = "jl", "Julia", "julia"
    packages = {"julia": "julia"}
    check_outcome = "syntax_error"
    compile_error_patterns = (r"ParseError", r"syntax:")
    failure_patterns = (r"Test Failed at", r"Error During Test", r"^ERROR: ")
    oom_patterns = (r"OutOfMemoryError",)
    source = "solution.jl"

    def find(self) -> dict[str, str]:
        path = shutil.which("julia")
        if path is None:  # no Debian package (bookworm has none)
            raise _tool_missing(self.display, "julia", "Debian has no package: install Julia from "
                                "https://julialang.org/downloads/ (MultiPL-E uses 1.8.2) and put its bin/ on PATH")
        return {"julia": path}

    def files(self, program: str, tests: str) -> dict[str, str]:
        # a failed @testset throws when it ends, before this line
        return {self.source: program + "\n" + tests
                + f"\nwrite(ENV[\"{ENV_VERDICT}\"], \"PASS \" * ENV[\"{ENV_TOKEN}\"] * \"\\n\")\n"}

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [tools["julia"], "--startup-file=no", "--history-file=no", os.path.join(workdir, self.source)]

    def environment(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> dict[str, str]:
        return {"JULIA_DEPOT_PATH": os.path.join(workdir, ".julia") + ":"}  # then the installation's own


class Swift(LanguageRunner):
    name, display, fence = "swift", "Swift", "swift"
    packages = {"swiftc": "swift"}
    abort_is_failure = True  # a failed assert() traps
    compile_error_patterns = (r"error:",)
    failure_patterns = (r"Assertion failed", r"Fatal error")
    source = "main.swift"  # top-level statements (the driver's asserts) belong in main.swift

    def find(self) -> dict[str, str]:
        path = shutil.which("swiftc")
        if path is None:  # Debian's `swift` package is OpenStack's object store, not the language
            raise _tool_missing(self.display, "swiftc", "Debian has no package: install the toolchain from "
                                "https://www.swift.org/install/ (MultiPL-E uses 5.7) and put its usr/bin on PATH")
        return {"swiftc": path}

    def files(self, program: str, tests: str) -> dict[str, str]:
        # the driver's asserts are top-level statements: a failed one traps before this line
        confirm = (f"\nimport Foundation\ntry! (\"PASS \" + ProcessInfo.processInfo.environment[\"{ENV_TOKEN}\"]! + \"\\n\")"
                   f".write(toFile: ProcessInfo.processInfo.environment[\"{ENV_VERDICT}\"]!, atomically: false, "
                   "encoding: .utf8)\n")
        return {self.source: program + "\n" + tests + confirm}

    def compile_argv(self, tools: dict[str, str], workdir: str, files: dict[str, str],
                     limits: dict[str, Any]) -> list[str]:
        return [tools["swiftc"], os.path.join(workdir, self.source), "-o", os.path.join(workdir, "solution")]

    def run_argv(self, tools: dict[str, str], workdir: str, limits: dict[str, Any]) -> list[str]:
        return [os.path.join(workdir, "solution")]


RUNNERS: dict[str, LanguageRunner] = {r.name: r for r in (Cpp(), Rust(), Java(), Go(), JavaScript(), Bash(),
                                                           Lua(), Php(), Perl(), Ruby(), R(), TypeScript(),
                                                           Racket(), Scala(), CSharp(), D(), Julia(), Swift())}


def get(name: str) -> LanguageRunner:
    try:
        return RUNNERS[name]
    except KeyError:
        raise ToolchainMissing(f"no runner for language {name!r}; known: {', '.join(sorted(RUNNERS))}") from None


# -- toolchains, resolved once per process (per PATH) ------------------------------------------------
_found: dict[tuple[str, str], dict[str, str] | str] = {}


def find(name: str) -> dict[str, str]:
    """The language's tools on this process's PATH (cached); raises ToolchainMissing."""
    key = (name, os.environ.get("PATH", ""))
    if key not in _found:
        try:
            _found[key] = get(name).find()
        except ToolchainMissing as e:
            _found[key] = str(e)
    value = _found[key]
    if isinstance(value, str):
        raise ToolchainMissing(value)
    return dict(value)


def missing(name: str) -> str | None:
    """Why the language's samples cannot run here (the install hint), or None."""
    try:
        find(name)
    except ToolchainMissing as e:
        return str(e)
    return None


def _reachable_by_others(path: str) -> bool:
    """Whether every directory on the way to ``path`` lets other users through."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _output(argv: list[str], **kwargs: Any) -> str:
    import subprocess  # only the plugin's process gets here, never the fork server

    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _prepared(kind: str, tool: str, cache: str, build: Any) -> dict[str, str]:
    """A directory built once per toolchain version under ``cache`` (``build(tool, dir) ->
    {name: path}``, written into a temporary directory and renamed into place, so concurrent
    runs never see half of it); {} when it cannot be built."""
    st = os.stat(tool)
    version = _output([tool, "version" if kind == "go" else "--version"])
    key = hashlib.sha256(f"{os.path.realpath(tool)}\0{st.st_size}\0{st.st_mtime_ns}\0{version}".encode()).hexdigest()[:16]
    final = os.path.join(cache, "toolchains", f"{kind}-{key}")
    index = os.path.join(final, "index.json")
    if not os.path.isfile(index):
        import tempfile

        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{kind}-", dir=os.path.dirname(final))
        try:
            built = build(tool, tmp)
            if not built:
                return {}
            with open(os.path.join(tmp, "index.json"), "w") as f:
                json.dump({name: os.path.relpath(path, tmp) for name, path in built.items()}, f)
            _world_readable(tmp)
            try:
                os.rename(tmp, final)
            except OSError:  # another process won the race: use its copy
                pass
        finally:
            if os.path.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    try:
        with open(index) as f:
            return {name: os.path.join(final, rel) for name, rel in json.load(f).items()}
    except (OSError, ValueError):
        return {}


def _world_readable(root: str) -> None:
    """Samples run as other uids: they must read (never write) what was prepared."""
    for here, dirs, files in os.walk(root):
        os.chmod(here, 0o755)
        for name in files:
            path = os.path.join(here, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


def _build_stdcxx_pch(gxx: str, where: str) -> dict[str, str]:
    """<bits/stdc++.h> precompiled with the samples' flags, beside a link to the header itself
    (the file's own #include of it then resolves there and is a no-op)."""
    import subprocess

    probe = subprocess.run([gxx, "-std=c++17", "-x", "c++", "-H", "-fsyntax-only", "-"],
                           input="#include <bits/stdc++.h>\n", capture_output=True, text=True)
    first = probe.stderr.splitlines()[0] if probe.returncode == 0 and probe.stderr else ""
    header = first.lstrip(". ").strip()
    if not header.endswith("stdc++.h") or not os.path.isfile(header):
        return {}
    pch = os.path.join(where, "pch")
    os.makedirs(os.path.join(pch, "bits"))
    os.symlink(header, os.path.join(pch, "bits", "stdc++.h"))
    done = subprocess.run([gxx, "-std=c++17", "-x", "c++-header", header, "-o",
                           os.path.join(pch, "bits", "stdc++.h.gch")], capture_output=True)
    return {"pch": pch} if done.returncode == 0 else {}


def _build_javac_batch(javac: str, where: str) -> dict[str, str]:
    """CodeevalJavac.java (shipped beside this module) compiled into a jar: javac for a group of
    units in one JVM (see :meth:`Java.batch_compile_argv`)."""
    import subprocess
    import zipfile

    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "CodeevalJavac.java")
    classes = os.path.join(where, "classes")
    done = subprocess.run([javac, "-encoding", "UTF8", "-d", classes, source], capture_output=True)
    if done.returncode != 0:
        return {}
    jar = os.path.join(where, "codeeval-javac.jar")
    with zipfile.ZipFile(jar, "w") as z:  # a jar: class-data sharing maps classes from jars only
        for name in sorted(os.listdir(classes)):
            z.write(os.path.join(classes, name), name)
    shutil.rmtree(classes)
    return {"javac_batch": jar}


_WARM_JAVA = """import java.util.*;
import org.javatuples.*;

class Problem {
    public static Pair<Long, String> f(ArrayList<Long> xs) { return Pair.with(xs.get(0), "x"); }
    public static void main(String[] args) { assert(f(new ArrayList<Long>(Arrays.asList(1L))).equals(Pair.with(1L, "x"))); }
}
"""


def _javac_class_data(java: str, jar: str, javatuples: str) -> str | None:
    """A class-data-sharing archive of what CodeevalJavac's JVM loads to compile a program
    (javac's classes), made once beside the jar it names (the archive records the jar's path,
    so it is made after the prepared directory took its final name); None when it cannot be."""
    import subprocess
    import tempfile

    archive = os.path.join(os.path.dirname(jar), "javac.jsa")
    if os.path.isfile(archive):
        return archive
    warm = tempfile.mkdtemp(prefix="codeeval-javac-")
    partial = f"{archive}.{os.getpid()}"
    try:
        with open(os.path.join(warm, "Problem.java"), "w") as f:
            f.write(_WARM_JAVA)
        unit = ["-encoding", "UTF8", "-cp", javatuples, "-d", os.path.join(warm, "classes"),
                os.path.join(warm, "Problem.java")]
        # the samples' flags (MaxRAM: the default memory limit; the heap's size decides the
        # pointer encoding, which an archive must share with the JVMs that map it)
        subprocess.run([java, *Java.JVM, "-XX:TieredStopAtLevel=1", f"-XX:MaxRAM={4096 * 1024 * 1024}",
                        f"-XX:ArchiveClassesAtExit={partial}",
                        "-cp", jar, "CodeevalJavac", "65536", ".result", warm, str(len(unit)), *unit],
                       capture_output=True, timeout=300)
        if not os.path.isfile(partial):
            return None
        os.chmod(partial, 0o644)
        os.rename(partial, archive)  # atomic: a concurrent run sees all of it or none
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(warm, ignore_errors=True)
        if os.path.exists(partial):
            os.unlink(partial)
    return archive


# Imported by the warm-up test so that go vet's facts about them are cached for every sample.
_GO_WARM_IMPORTS = ("fmt", "testing", "math", "sort", "strings", "strconv", "unicode", "reflect",
                    "bytes", "regexp", "math/big", "container/heap", "container/list", "errors", "os", "time")


def _build_go_cache(go: str, where: str) -> dict[str, str]:
    """A GOCACHE holding what `go test -c` of a MultiPL-E test needs from the standard library
    (go vet's facts, ~1 s of CPU a sample otherwise)."""
    import subprocess

    src = os.path.join(where, "src")
    os.makedirs(src)
    imports = "\n".join(f'\t_ "{p}"' for p in _GO_WARM_IMPORTS if p not in ("fmt", "testing"))
    with open(os.path.join(src, "warm_test.go"), "w") as f:
        f.write(f'package warm_test\n\nimport (\n\t"fmt"\n\t"testing"\n{imports}\n)\n\n'
                'func TestWarm(t *testing.T) { fmt.Sprint(t) }\n')
    cache = os.path.join(where, "gocache")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": where, "GOCACHE": cache,
           "GOPATH": os.path.join(where, "gopath"), "GOTOOLCHAIN": "local", "GOTELEMETRY": "off",
           "GOFLAGS": "", "GOPROXY": "off", "GOMAXPROCS": "2"}
    done = subprocess.run([go, "test", "-c", "-o", os.devnull, "warm_test.go"], cwd=src, env=env,
                          capture_output=True)
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(os.path.join(where, "gopath"), ignore_errors=True)
    return {"gocache": cache} if done.returncode == 0 else {}


def cache_root() -> str:
    """Where prepared toolchain files live: the plugin's cache directory (``CODEEVAL_CACHE``,
    else ``$XDG_CACHE_HOME/pytest-codeeval`` or ``~/.cache/pytest-codeeval``)."""
    explicit = os.environ.get("CODEEVAL_CACHE")
    if explicit:
        return os.path.expanduser(explicit)
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pytest-codeeval")


_ready: dict[tuple[str, str, str], dict[str, str]] = {}


def toolchain(name: str, cache: str | None = None) -> dict[str, str]:
    """Found and prepared tools of a language, for the sandbox; raises ToolchainMissing."""
    cache = cache or cache_root()
    key = (name, os.environ.get("PATH", ""), cache)
    if key not in _ready:
        tools = find(name)
        try:
            tools = get(name).prepare(tools, cache)
        except OSError:
            pass  # unprepared is slower, never wrong
        _ready[key] = tools
    return dict(_ready[key])
