"Issue 18: the package's shape. No module imports itself round a circle, even through imports placed inside functions."
import ast, subprocess, sys, time
from pathlib import Path
from conftest import BIN, clean_env

PACKAGE = Path(__file__).resolve().parents[1]/'workbench'


def imports(path:Path) -> set:
    "The workbench modules that the module at `path` imports, anywhere in it (functions included)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = 'workbench' if node.level else node.module or ''
            if node.level and node.module: base = f'workbench.{node.module}'
            if base == 'workbench': out |= {f'workbench.{a.name}' for a in node.names}
            elif base.startswith('workbench.'): out.add(base)
        elif isinstance(node, ast.Import): out |= {a.name for a in node.names if a.name.startswith('workbench.')}
    return out


def graph() -> dict:
    "Module -> the package's modules it imports."
    mods = {f'workbench.{p.stem}': p for p in PACKAGE.glob('*.py') if p.stem not in ('__init__', '_modidx')}
    return {m: {i for i in imports(p) if i in mods and i != m} for m, p in mods.items()}


def cycles(g:dict) -> list:
    "Each import cycle of `g` once, as the list of modules round it (Tarjan's strongly connected components)."
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in sorted(g[v]):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index: visit(v)
    return out


def test_the_cycle_finder_finds_cycles(tmp_path):
    test_g = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}, 'e': set()}
    assert cycles(test_g) == [['a', 'b', 'c']] and cycles({'a': {'b'}, 'b': set()}) == []
    (tmp_path/'m.py').write_text("from .config import X\nimport json\ndef f():\n    from workbench import data, registry as r\n    import workbench.batch\n")
    assert imports(tmp_path/'m.py') == {'workbench.config', 'workbench.data', 'workbench.registry', 'workbench.batch'}  # in functions too


def test_no_import_cycle():
    assert cycles(graph()) == [], 'modules that import each other (directly or round a circle)'


def test_help_is_quick():
    "`workbench --help` in under 0.5 s: the CLI imports only what it needs to list its commands."
    times = []
    for _ in range(3):
        t = time.perf_counter()
        r = subprocess.run([str(BIN/'workbench'), '--help'], capture_output=True, text=True, env=clean_env(), timeout=60)
        times.append(time.perf_counter() - t)
        assert r.returncode == 0 and 'demo' in r.stdout, r.stderr
    assert min(times) < 0.5, f'workbench --help took {min(times):.2f} s at best of 3'
