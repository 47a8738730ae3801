#!/usr/bin/env bash
# Does a chapter run as it would in Colab, on Python 3.13 with Colab's torch? (make check-py313; not in CI)
#
#   1. a fresh Python 3.13 virtual environment,
#   2. torch and torchvision installed first, at the versions Colab ships,
#   3. the repository installed as Colab's setup cell does (`pip install git+https://...`: not editable,
#      from the committed tree) -- and pip must leave torch alone (no reinstall, no downgrade),
#   4. one chapter notebook copied alone into an empty folder and executed there in the smoke profile.
#
# Prints PASS or FAIL with the time of each step; exits 1 on failure. Everything lives in a temporary
# folder, removed at the end unless KEEP=1.
#
#   scripts/check-python313.sh [chapters/03_lenet.ipynb]
#   PYTHON313=/path/to/python3.13 TORCH=2.14.1 TORCHVISION=0.29.1 REF=HEAD KEEP=1 scripts/check-python313.sh
#   SRC=/some/folder scripts/check-python313.sh     # install that folder instead of the commit REF
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
NOTEBOOK="${1:-chapters/03_lenet.ipynb}"
TORCH="${TORCH:-2.14.1}"
TORCHVISION="${TORCHVISION:-0.29.1}"
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

step() {  # step "what" command...: run it with its output in $LOG, time it, stop with FAIL if it fails
  local what="$1" start end status=0 logfile
  shift
  logfile="$LOG/$(echo "$what" | tr -c 'a-zA-Z0-9' '_').log"
  echo "==> $what"
  start=$(date +%s%N)
  "$@" >"$logfile" 2>&1 || status=$?
  end=$(date +%s%N)
  TIMINGS+=("$(printf '%5d.%d s  %s' $(((end - start) / 1000000000)) $(((end - start) / 100000000 % 10)) "$what")")
  if [ "$status" -ne 0 ]; then
    echo "--- last lines of $logfile:"
    tail -n 40 "$logfile"
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
step "pip install torch==$TORCH torchvision==$TORCHVISION (as Colab has them)" \
  "$PY" -m pip install --progress-bar off "torch==$TORCH" "torchvision==$TORCHVISION"
# Colab also has Jupyter's kernel and nbclient; installed here before cnnbook, like torch.
step "pip install ipykernel nbclient (as Colab has them)" "$PY" -m pip install --progress-bar off ipykernel nbclient
before="$("$PY" -m pip show torch | awk '/^Version:/ {print $2}')"

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
after="$("$PY" -m pip show torch | awk '/^Version:/ {print $2}')"
install_log="$LOG/$(echo "$what" | tr -c 'a-zA-Z0-9' '_').log"
echo "    torch before: $before, after: $after"
if [ "$before" != "$after" ] || grep -Eq '^Successfully installed.* (torch|torchvision)-[0-9]' "$install_log"; then
  grep -E '^Successfully installed' "$install_log" || true
  finish FAIL "installing cnnbook changed torch ($before -> $after): pip reinstalled or downgraded it"
fi
echo "    installed by cnnbook: $(grep -E '^Successfully installed' "$install_log" | cut -c 24- || echo nothing)"

# One chapter, alone in an empty folder (as in Colab's /content), executed in the smoke profile.
RUN="$WORK/run"
mkdir -p "$RUN"
cp "$REPO/$NOTEBOOK" "$RUN/"
name="$(basename "$NOTEBOOK")"
cat >"$WORK/execute.py" <<'EOF'
import sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
for cell in nb.cells:  # the committed outputs go: what is printed below is this run's
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}})
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
        text = out.get("text", "")
        for line in text.splitlines():
            if any(word in line for word in ("cnnbook:", "accuracy", "training ")):
                print("    |", line[:160])
print(f"executed in {time.perf_counter() - start:.1f} s")
sys.exit(status)
EOF
cd "$RUN"
step "execute $name alone in an empty folder (CNNBOOK_PROFILE=smoke)" \
  env CNNBOOK_PROFILE=smoke CNNBOOK_PROGRESS=0 "$PY" "$WORK/execute.py" "$RUN/$name" "$RUN"
grep -E '^    \||^executed' "$LOG"/execute_*.log || true
echo "    files written beside the notebook: $(cd "$RUN" && find . -type f ! -name '*.ipynb' | sort | tr '\n' ' ')"
version="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
finish PASS "$name ran on Python $version with torch $after, cnnbook installed from $REF"
