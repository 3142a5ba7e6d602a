#!/usr/bin/env python3
"""Structure figures of the gsqhw sources (issue #17's "Done means"), for the working tree or
any commit:

  scripts/code_metrics.py functions [--rev REV] [--top 15] [--under gen sim ...]
      the longest C++ functions: lines (signature to closing brace), file:line, name
  scripts/code_metrics.py emitters [--rev REV]
      lines of every file that writes Verilog text (gen/*emit*, the testbenches, LoTA/PTQ1.61,
      the Verilog writer itself; before the move: synth/baseline.cpp, sim/core_cosim.cpp)
  scripts/code_metrics.py layers [--rev REV]
      the folder dependency graph from the #include lines: one edge per (folder -> folder)
      with its include count; edges that point up the layer order are marked UPWARD and make
      the exit status 1 (tests/layers/test_layers.cpp enforces the same rule)

--rev reads the files of that commit through git (e.g. --rev 6fb3dc3, the commit before the
Verilog writer work), without checking it out. Python 3 standard library only.

Functions are found with a brace counter, not a compiler: comments, string and character
literals (raw strings included) and preprocessor lines are blanked first; a `{` at namespace
or class scope whose head (the text since the previous `;`, `{` or `}`) has a closing
parenthesis and no `=` opens a function (a constructor's `x_{...}` member initialisers are
skipped). Lambdas count toward the function that holds them; TEST(...) bodies count as
functions.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

SOURCE_DIRS = ["base", "numerics", "gen", "workloads", "sim", "synth", "cli", "tests", "bench"]
LAYERS = ["base", "numerics", "gen|workloads", "sim", "synth", "cli"]  # bottom to top


def layer_rank(folder):
    for rank, names in enumerate(LAYERS):
        if folder in names.split("|"):
            return rank
    return None


# --- reading the sources -----------------------------------------------------------------

class Tree:
    """Files of the working tree (rev None) or of a commit."""

    def __init__(self, root, rev):
        self.root, self.rev = root, rev

    def files(self, dirs, exts=(".cpp", ".h")):
        if self.rev:
            out = subprocess.run(["git", "-C", self.root, "ls-tree", "-r", "--name-only", self.rev]
                                 + dirs, check=True, capture_output=True, text=True).stdout
            names = out.split()
        else:
            names = []
            for d in dirs:
                for base, _, files in os.walk(os.path.join(self.root, d)):
                    names += [os.path.relpath(os.path.join(base, f), self.root) for f in files]
        return sorted(n for n in names if n.endswith(exts))

    def read(self, name):
        if self.rev:
            return subprocess.run(["git", "-C", self.root, "show", f"{self.rev}:{name}"],
                                  check=True, capture_output=True, text=True).stdout
        with open(os.path.join(self.root, name), encoding="utf-8", errors="replace") as f:
            return f.read()


def blank_non_code(text):
    """Comments, literals and preprocessor lines replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#" or (line_start and c in " \t" and text[i:].lstrip(" \t").startswith("#")):
            j = i
            while j < n:  # a preprocessor line, with its continuations
                k = text.find("\n", j)
                if k < 0:
                    k = n
                if k > 0 and text[k - 1] == "\\":
                    j = k + 1
                    continue
                break
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
            continue
        if text.startswith("//", i):
            k = text.find("\n", i)
            k = n if k < 0 else k
            out.append(" " * (k - i))
            i = k
            continue
        if text.startswith("/*", i):
            k = text.find("*/", i + 2)
            k = n if k < 0 else k + 2
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
            continue
        m = re.match(r'(?:u8|u|U|L)?R"([^()\\ ]{0,16})\(', text[i:i + 24])
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = text.find(")" + m.group(1) + '"', i + m.end())
            k = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2:k]))
            i = k
            continue
        if c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
            line_start = False
            continue
        out.append(c)
        if c == "\n":
            line_start = True
        elif c not in " \t":
            line_start = False
        i += 1
    return "".join(out)


# --- functions -----------------------------------------------------------------------------

def matching_brace(code, open_pos):
    depth = 0
    for k in range(open_pos, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1


def function_name(head):
    flat = " ".join(head.split())
    m = re.match(r"(TEST(?:_F|_P)?\s*\([^)]*\))", flat)
    if m:
        return m.group(1)
    depth, cut = 0, None
    for k, ch in enumerate(flat):  # the first top-level parenthesis ends the name
        if ch == "(" and depth == 0:
            cut = k
            break
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
    name = flat[:cut] if cut is not None else flat
    m = re.search(r"((?:[A-Za-z_]\w*(?:<[^()]*>)?::)*~?[A-Za-z_]\w*|operator\s*\S+)\s*$", name)
    return m.group(1) if m else name.strip()


def find_functions(code):
    """(start_line, end_line, name) of every function body at namespace or class scope."""
    found = []

    def scan(lo, hi):
        head_start = lo
        k = lo
        while k < hi:
            ch = code[k]
            if ch in ";}":
                head_start = k + 1
            elif ch == "{":
                head = code[head_start:k]
                close = matching_brace(code, k)
                scope = re.search(r"\b(namespace|class|struct|union)\b", head)
                flat = " ".join(head.split())
                if re.search(r"\benum\b", head):
                    pass
                elif scope and "(" not in head[:scope.start()] and not re.search(r"\)\s*$", head):
                    scan(k + 1, close)  # namespace or class body: look for functions inside
                elif re.search(r"\)\s*:[^:]", flat) and re.search(r"[\w>]\s*$", head) \
                        and not re.search(r"\)\s*(const|noexcept|override|final|\s)*$", head):
                    k = close + 1  # a member initialiser x_{...} inside a constructor's list
                    continue
                elif ")" in head and "=" not in re.sub(r"(operator\s*\S*=|==|!=|<=|>=|=\s*default)", "", head.split("(")[0]) :
                    body_head = re.sub(r"^\s*(public|private|protected)\s*:", "", head)
                    offset = len(head) - len(body_head.lstrip())
                    start = code.count("\n", 0, head_start + offset) + 1
                    end = code.count("\n", 0, close) + 1
                    found.append((start, end, function_name(body_head)))
                head_start = close + 1
                k = close + 1
                continue
            k += 1

    scan(0, len(code))
    return found


def cmd_functions(tree, args):
    rows = []
    for name in tree.files(args.under):
        for start, end, fn in find_functions(blank_non_code(tree.read(name))):
            rows.append((end - start + 1, f"{name}:{start}", fn))
    rows.sort(key=lambda r: (-r[0], r[1]))
    print(f"longest functions ({tree.rev or 'working tree'}; {len(rows)} functions in "
          f"{', '.join(args.under)})")
    print(f"{'lines':>6}  {'where':<44} function")
    for length, where, fn in rows[:args.top]:
        print(f"{length:>6}  {where:<44} {fn}")


# --- emitters ------------------------------------------------------------------------------

# Files that write Verilog text, as they were named before and after the move onto the writer.
EMITTER_FILES = [
    "gen/verilog/module.h", "gen/verilog/module.cpp", "gen/verilog/expr.h", "gen/verilog/expr.cpp",
    "gen/verilog_text.h", "gen/verilog_text.cpp", "gen/pipeline.h", "gen/pipeline.cpp",
    "gen/emit.h", "gen/pe_emit.cpp", "gen/accumulator_emit.cpp", "gen/stage_emit.cpp",
    "gen/grid_emit.cpp",
    "gen/array_emit.cpp", "gen/shared_emit.cpp", "gen/minifloat_shared_emit.cpp", "gen/ws_emit.cpp",
    "gen/core_emit.cpp",
    "gen/quantizer_emit.cpp", "gen/dequantizer_emit.cpp", "gen/baseline_emit.cpp",
    "synth/baseline.cpp", "gen/cosim_wrapper_emit.cpp", "sim/core_cosim.cpp", "gen/lota.cpp",
    "gen/ptq161.cpp", "gen/lota_rtlcheck.cpp", "gen/testbench.cpp", "gen/core_testbench.cpp",
    "gen/generator.cpp",
]
VERILOG_WORD = re.compile(r"\b(module|endmodule|wire|reg|assign|always|input|output|begin|end)\b")


def template_sites(text):
    """Verilog written as text: fill() calls, raw strings holding Verilog, and string
    concatenation (`+=` of a literal) holding Verilog."""
    sites = len(re.findall(r"\bfill\(", text))
    for m in re.finditer(r'R"(\w*)\((.*?)\)\1"', text, re.S):
        sites += bool(VERILOG_WORD.search(m.group(2))) and "fill(" not in text[max(0, m.start() - 40):m.start()]
    for m in re.finditer(r'\+=\s*(?:fmt::format\()?\s*"([^"\n]*)"', text):
        sites += bool(VERILOG_WORD.search(m.group(1)))
    return sites


def cmd_emitters(tree, args):
    present = set(tree.files(["gen", "sim", "synth"]))
    print(f"Verilog emitters ({tree.rev or 'working tree'}): lines per file, and how many "
          "places still write Verilog as text (fill(), raw strings, += of literals)")
    print(f"{'lines':>6} {'templates':>9}  file")
    total = 0
    for name in EMITTER_FILES:
        if name not in present:
            continue
        text = tree.read(name)
        lines = text.count("\n")
        total += lines
        sites = 0 if name.startswith("gen/verilog/") else template_sites(text)  # the printer itself
        print(f"{lines:>6} {sites:>9}  {name}")
    print(f"{total:>6} {'':>9}  total")


# --- layers --------------------------------------------------------------------------------

def cmd_layers(tree, args):
    edges = collections.Counter()
    include_re = re.compile(r'^\s*#\s*include\s*"([a-z_]+)/[^"]+"', re.M)
    for name in tree.files([d for d in LAYERS_FLAT()]):
        src = name.split("/")[0]
        for target in include_re.findall(tree.read(name)):
            if target != src and layer_rank(target) is not None:
                edges[(src, target)] += 1
    upward = 0
    print(f"folder dependency graph ({tree.rev or 'working tree'}): folder -> included folder "
          "(#includes); layers bottom to top: " + " < ".join(LAYERS))
    for (src, dst), count in sorted(edges.items(), key=lambda e: (layer_rank(e[0][0]), e[0])):
        up = layer_rank(dst) >= layer_rank(src)
        upward += up
        print(f"  {src:<10} -> {dst:<10} {count:>4}{'  UPWARD' if up else ''}")
    print(f"{len(edges)} edges, {upward} upward")
    return 1 if upward else 0


def LAYERS_FLAT():
    return [n for names in LAYERS for n in names.split("|")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["functions", "emitters", "layers"])
    parser.add_argument("--rev", help="a commit to read instead of the working tree")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--under", nargs="+", default=SOURCE_DIRS,
                        help="folders to search for functions (default: all source folders)")
    args = parser.parse_args()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    if not root:
        print("code_metrics.py: not inside a git checkout", file=sys.stderr)
        return 2
    if args.rev:
        ok = subprocess.run(["git", "-C", root, "rev-parse", "--verify", "--quiet",
                             args.rev + "^{commit}"], capture_output=True).returncode == 0
        if not ok:
            print(f"code_metrics.py: no commit {args.rev}", file=sys.stderr)
            return 2
    tree = Tree(root, args.rev)
    if args.what == "functions":
        args.under = [d for d in args.under if tree.files([d])]
        cmd_functions(tree, args)
        return 0
    if args.what == "emitters":
        cmd_emitters(tree, args)
        return 0
    return cmd_layers(tree, args)


if __name__ == "__main__":
    sys.exit(main())
