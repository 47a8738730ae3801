#!/usr/bin/env bash
# Execute chapters in the gpu profile on a CUDA machine, writing the executed notebooks and the records
# apart from the book's cpu ones:  bash scripts/run-gpu-profile.sh OUT_DIR [chapters/NN_*.ipynb ...]
# OUT_DIR/notebooks/<chapter>.ipynb, OUT_DIR/results/gpu/<chapter>.json, OUT_DIR/log.txt.
# Python packages from ./.whl and the data from ./.devdata are used when present (an offline GPU box).
set -uo pipefail
out=${1:?usage: run-gpu-profile.sh OUT_DIR [notebooks...]}; shift
chapters=("$@"); [ ${#chapters[@]} -gt 0 ] || chapters=(chapters/*.ipynb)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  python3 -m ipykernel install --user --name python3 >/dev/null 2>&1 || true
fi
[ -d .devdata ] && export CNNBOOK_DATA=$PWD/.devdata
export CNNBOOK_RESULTS=$out/results PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out/notebooks" "$out/results"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$out/log.txt"
python3 -m cnnbook.book execute --profile gpu --output-dir "$out/notebooks" "${chapters[@]}" 2>&1 | tee -a "$out/log.txt"
