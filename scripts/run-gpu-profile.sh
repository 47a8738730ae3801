#!/usr/bin/env bash
# Execute chapters in the gpu profile on a CUDA machine, apart from the book's cpu outputs and records:
#   bash scripts/run-gpu-profile.sh WORK_DIR [chapters/NN_*.ipynb ...]
# writes WORK_DIR/notebooks/<chapter>.ipynb, WORK_DIR/results/gpu/<chapter>.json and WORK_DIR/log.txt.
# TARBALL=path: after every chapter, pack WORK_DIR into that .tgz (for a machine whose files come back
# only as a few files). DEADLINE_S=n: start no chapter after n seconds. JOBS=n: run up to n chapters at
# once (a short GPU slot: six at once took under 4 minutes on an H200), their kernels started 5 s apart
# (two kernels started together can pick the same port); each chapter's output goes to
# WORK_DIR/log-<chapter>.txt, appended to log.txt when it ends. Python packages from ./.whl and
# Fashion-MNIST from ./.devdata are used when present (an offline GPU machine).
# Afterwards: copy WORK_DIR/results/gpu/*.json to results/gpu/ and run `python -m cnnbook.results`.
set -uo pipefail
work=${1:?usage: run-gpu-profile.sh WORK_DIR [notebooks...]}; shift
chapters=("$@"); [ ${#chapters[@]} -gt 0 ] || chapters=(chapters/*.ipynb)
start=$SECONDS
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=/tmp/site
fi
[ -d .devdata ] && export CNNBOOK_DATA=$PWD/.devdata
export CNNBOOK_RESULTS=$work/results PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$work/notebooks" "$work/results"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" 2>&1 | tee -a "$work/log.txt"
run_chapter() {  # run_chapter NOTEBOOK: execute it, its output in its own log, then appended to log.txt
  local log="$work/log-$(basename "$1" .ipynb).txt"
  python3 -m cnnbook.book execute --profile gpu --output-dir "$work/notebooks" "$1" 2>&1 \
    | grep -v "Kernel is running over TCP" > "$log"
  cat "$log" >> "$work/log.txt"
  [ -n "${TARBALL:-}" ] && tar czf "$TARBALL" -C "$work" .
  [ "${JOBS:-1}" -le 1 ] && cat "$log"
  true
}
for nb in "${chapters[@]}"; do
  if [ -n "${DEADLINE_S:-}" ] && [ $((SECONDS - start)) -ge "$DEADLINE_S" ]; then
    echo "skipped $nb (deadline)" | tee -a "$work/log.txt"; continue
  fi
  if [ "${JOBS:-1}" -le 1 ]; then
    run_chapter "$nb"
    continue
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  echo "starting $nb" | tee -a "$work/log.txt"
  run_chapter "$nb" &
  sleep 5
done
wait
true
