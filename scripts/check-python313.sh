#!/usr/bin/env bash
# Do the chapters run as they would in Colab, with Colab's runtime as it is now? (make check-py313; not in CI)
#
#   1. a fresh Python 3.13 virtual environment,
#   2. what Colab has preinstalled, installed first at Colab's versions: torch 2.11.0, torchvision 0.26.0,
#      numpy 2.1.3, ipywidgets 7.7.1, and Jupyter's kernel and nbclient (torchinfo is not preinstalled),
#   3. the repository installed as Colab's setup cell does (`pip install git+https://...`: not editable,
#      from the committed tree) -- pip must install only what is missing: every package already there
#      (torch, torchvision, numpy, ipywidgets, ...) keeps its version,
#   4. one early and one late chapter (03_lenet, 08_batch_norm, which builds on chapter 3's code), each
#      copied alone into an empty folder and executed there in the smoke profile, offline (HTTP(S) proxies
#      pointed at a closed port), with progress bars on as a Colab reader sees them: each must run to its
#      end, and its progress bars must be ipywidgets bars that render (no "IProgress not found", no raw
#      widget text such as "HBox(children=" or "FloatProgress(" in its outputs).
#
# Prints PASS or FAIL with the time of each step; exits 1 on failure. Everything lives in a temporary
# folder, removed at the end unless KEEP=1.
#
#   scripts/check-python313.sh [chapters/03_lenet.ipynb chapters/08_batch_norm.ipynb]
#   PYTHON313=/path/to/python3.13 TORCH=2.11.0 TORCHVISION=0.26.0 NUMPY=2.1.3 IPYWIDGETS=7.7.1 REF=HEAD KEEP=1 \
#     scripts/check-python313.sh
#   SRC=/some/folder scripts/check-python313.sh     # install that folder instead of the commit REF
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$#" -gt 0 ]; then NOTEBOOKS=("$@"); else NOTEBOOKS=(chapters/03_lenet.ipynb chapters/08_batch_norm.ipynb); fi
# Colab's runtime (Python 3.13): these are preinstalled there, cnnbook must not change them.
TORCH="${TORCH:-2.11.0}"
TORCHVISION="${TORCHVISION:-0.26.0}"
NUMPY="${NUMPY:-2.1.3}"
IPYWIDGETS="${IPYWIDGETS:-7.7.1}"
REF="${REF:-HEAD}"  # the commit installed, as `git+https://...` would install the pushed one
SRC="${SRC:-}"  # or a folder to install instead (e.g. a copy of the tree with a fix to try)
export CNNBOOK_DATA="${CNNBOOK_DATA:-/usr/share/datasets/fashion-mnist}"

if [ -z "${PYTHON313:-}" ]; then
  if [ -x "$HOME/.pyenv/versions/3.13.0/bin/python3.13" ]; then
    PYTHON313="$HOME/.pyenv/versions/3.13.0/bin/python3.13"
  else
    PYTHON313="$(command -v python3.13 || true)"
  fi
fi
if [ -z "$PYTHON313" ] || ! "$PYTHON313" --version >/dev/null 2>&1; then
  echo "FAIL: no Python 3.13 found (set PYTHON313=/path/to/python3.13)" >&2
  exit 1
fi

WORK="$(mktemp -d -t cnnbook-py313-XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
LOG="$WORK/log"
mkdir -p "$LOG"
declare -a TIMINGS=()

logfile() { echo "$LOG/$(echo "$1" | tr -c 'a-zA-Z0-9' '_').log"; }

step() {  # step "what" command...: run it with its output in $LOG, time it, stop with FAIL if it fails
  local what="$1" start end status=0 log
  shift
  log="$(logfile "$what")"
  echo "==> $what"
  start=$(date +%s%N)
  "$@" >"$log" 2>&1 || status=$?
  end=$(date +%s%N)
  TIMINGS+=("$(printf '%5d.%d s  %s' $(((end - start) / 1000000000)) $(((end - start) / 100000000 % 10)) "$what")")
  if [ "$status" -ne 0 ]; then
    echo "--- last lines of $log:"
    tail -n 40 "$log"
    finish FAIL "$what (exit status $status)"
  fi
}

finish() {  # finish PASS|FAIL "why"
  echo
  echo "Timings:"
  printf '  %s\n' "${TIMINGS[@]}"
  echo
  if [ "$1" = PASS ]; then
    echo "PASS: $2"
    exit 0
  fi
  echo "FAIL: $2"
  exit 1
}

VENV="$WORK/venv"
PY="$VENV/bin/python"
echo "Python: $("$PYTHON313" --version) ($PYTHON313); work folder: $WORK"

step "create a fresh venv" "$PYTHON313" -m venv "$VENV"
COLAB=("torch==$TORCH" "torchvision==$TORCHVISION" "numpy==$NUMPY" "ipywidgets==$IPYWIDGETS" ipykernel nbclient nbformat)
step "pip install ${COLAB[*]} (as Colab has them)" "$PY" -m pip install --progress-bar off "${COLAB[@]}"
versions() { "$PY" -c 'import sys, torch, torchvision, numpy, ipywidgets
print(f"torch {torch.__version__} torchvision {torchvision.__version__} numpy {numpy.__version__} "
      f"ipywidgets {ipywidgets.__version__}")'; }
echo "    $(versions)"
"$PY" -m pip freeze --all >"$WORK/freeze-before.txt"

# The committed tree, as `pip install git+https://github.com/cnnbook/cnnbook` sees it.
if [ -n "$SRC" ]; then
  REF="$SRC"
  cp -r "$SRC" "$WORK/src"
else
  mkdir -p "$WORK/src"
  git -C "$REPO" archive "$REF" | tar -x -C "$WORK/src"
fi
what="pip install the repository at $REF (not editable)"
step "$what" "$PY" -m pip install --progress-bar off "$WORK/src"
"$PY" -m pip freeze --all >"$WORK/freeze-after.txt"
# (a) pip installed only what was missing: every package there before keeps its version and was not reinstalled.
step "installing cnnbook changed no preinstalled package (pip freeze before/after)" "$PY" - \
  "$WORK/freeze-before.txt" "$WORK/freeze-after.txt" "$(logfile "$what")" <<'EOF'
import re, sys

def freeze(path):
    found = {}
    for line in open(path):
        name = re.split(r"[=@ ]", line.strip(), maxsplit=1)[0]
        if name:
            found[re.sub(r"[-_.]+", "-", name).lower()] = line.strip()
    return found

before, after = freeze(sys.argv[1]), freeze(sys.argv[2])
changed = [f"{before[k]} -> {after.get(k, 'removed')}" for k in before if after.get(k) != before[k]]
for line in open(sys.argv[3]):  # "Successfully installed cnnbook-0.2.0 torch-2.11.0 ...": a reinstall counts
    if line.startswith("Successfully installed "):
        names = (re.sub(r"[-_.]+", "-", re.sub(r"-[^-]+$", "", word)).lower() for word in line.split()[2:])
        changed += [f"{before[name]} reinstalled" for name in names if name in before]
added = sorted(after[k] for k in after.keys() - before.keys())
print("installed by cnnbook:", " ".join(added) or "nothing")
if changed:
    print("changed by installing cnnbook:", *changed, sep="\n  ")
    sys.exit(1)
EOF
echo "    $(grep -h '^installed by cnnbook' "$LOG"/installing_cnnbook*.log)"
echo "    after: $(versions)"

# Executes a notebook with nbclient (as a reader's kernel runs it: progress bars on), then checks what it
# wrote: the run reached the end, and every progress bar is an ipywidgets bar whose text is the bar itself.
cat >"$WORK/execute.py" <<'EOF'
import json, re, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path, folder = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
for cell in nb.cells:  # the committed outputs go: what is printed below is this run's
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": folder}})
start = time.perf_counter()
try:
    client.execute()
    status = 0
except CellExecutionError as err:
    print(err)
    status = 1
finally:
    nbformat.write(nb, path.replace(".ipynb", ".executed.ipynb"))
for cell in nb.cells:  # the setup cell's line and every printed line mentioning the device or an accuracy
    for out in cell.get("outputs", []):
        text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
        for line in text.splitlines():
            if any(word in line for word in ("cnnbook:", "accuracy", "training ")):
                print("    |", line[:160])
print(f"executed in {time.perf_counter() - start:.1f} s")
sys.exit(status)
EOF
cat >"$WORK/check_bars.py" <<'EOF'
import json, sys
import nbformat

nb = nbformat.read(sys.argv[1], as_version=4)
WIDGET = "application/vnd.jupyter.widget-view+json"
RAW = ("IProgress not found", "HBox(children=", "FloatProgress(", "TqdmWarning")
bars, bad = 0, []
for number, cell in enumerate(nb.cells):
    for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
        data = out.get("data", {})
        if WIDGET in data and str(data.get("text/plain", "")).startswith("epoch "):
            bars += 1
        text = json.dumps(out)
        bad += [f"cell {number}: {word!r} in a {out.get('output_type')} output" for word in RAW if word in text]
print(f"{bars} progress bar widget(s); first: "
      + next((o["data"]["text/plain"] for c in nb.cells for o in c.get("outputs", [])
              if WIDGET in o.get("data", {})), "none"))
print(*bad, sep="\n")
trains = any("train(" in c.source for c in nb.cells if c.cell_type == "code")
if bad or (trains and not bars):
    print("progress bars do not render as widgets" + ("" if bars else ": none was shown"))
    sys.exit(1)
EOF

for notebook in "${NOTEBOOKS[@]}"; do
  # The chapter alone in an empty folder (as in Colab's /content), offline: no way to fetch anything.
  name="$(basename "$notebook")"
  RUN="$WORK/run-${name%.ipynb}"
  mkdir -p "$RUN"
  cp "$WORK/src/$notebook" "$RUN/"  # the notebook of the tree installed
  what="execute $name alone in an empty folder, offline (CNNBOOK_PROFILE=smoke, progress bars on)"
  cd "$RUN"
  step "$what" env -u CNNBOOK_PROGRESS CNNBOOK_PROFILE=smoke XDG_CACHE_HOME="$WORK/cache" \
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 \
    https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= "$PY" "$WORK/execute.py" "$RUN/$name" "$RUN"
  cd "$WORK"
  grep -E '^    \||^executed' "$(logfile "$what")" || true
  step "$name: progress bars render under ipywidgets $IPYWIDGETS" \
    "$PY" "$WORK/check_bars.py" "$RUN/${name%.ipynb}.executed.ipynb"
  echo "    $(head -n 1 "$(logfile "$name: progress bars render under ipywidgets $IPYWIDGETS")")"
  echo "    files written beside the notebook: $(cd "$RUN" && find . -type f ! -name '*.ipynb' | sort | tr '\n' ' ')"
done
version="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
finish PASS "$(printf '%s ' "${NOTEBOOKS[@]##*/}")ran on Python $version with $(versions), cnnbook installed from $REF"
