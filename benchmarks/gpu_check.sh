#!/usr/bin/env bash
# One-shot check of the GPU paths on a CUDA machine (about 5 minutes on one modern GPU; never run in CI):
#   1. every benchmarked network's forward (batch 1/8) and training step (batch 8) in fp32, bf16 autocast,
#      bf16 + channels_last, and torch.compile (benchmarks/bench_arch.py, one table each);
#   2. a few training iterations of every model (SFMNet stage 1, the GAN stage) through BasicSR's trainer under
#      torchrun --nproc_per_node=1 with --launcher pytorch (nccl), on generated real-face pairs;
#   3. sfmnet-export + ONNX Runtime parity for a small SFMNet.
#
#   bash benchmarks/gpu_check.sh                          # from the repository root, venv active
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh   # tiny CPU rehearsal of the commands
#   GPU_CHECK_SKIP_BENCH=1 ...                            # only the training runs and the ONNX check
#
# Output: ${GPU_CHECK_OUT:-gpu_check_output}/ (tables, logs); a summary table is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SMOKE=${GPU_CHECK_SMOKE:-0}
OUT=${GPU_CHECK_OUT:-gpu_check_output}
mkdir -p "$OUT"
export SFMNET_ROOT_PATH="$(cd "$OUT" && pwd)/runs"

if [ "$SMOKE" = 1 ]; then
  BENCH=(--models sfmnet-tiny --warmup 1 --repeats 1 --batch-sizes 1 --train-batch-size 2 --threads 2)
  ITERS=2; TINY=('network_g:num_feat=8' 'network_g:num_heads=2'); MODES=(fp32 bf16)
else
  BENCH=(--warmup 2 --repeats 5)
  ITERS=20; TINY=(); MODES=(fp32 bf16 bf16-cl compile)
fi
[ "$DEVICE" = cpu ] || "$PY" -c 'import torch, sys; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(0), "torch", torch.__version__)'

# ---------------------------------------------------------------- 1. forward / backward per precision
[ "${GPU_CHECK_SKIP_BENCH:-0}" = 1 ] && MODES=()  # rerun only sections 2-3
for mode in ${MODES[@]+"${MODES[@]}"}; do
  case $mode in
    fp32) flags=(--ratio-modes fp32 bf16-cl) ;;  # the speed-mode ratio table once, beside the fp32 run
    bf16) flags=(--amp bf16 --ratio-modes) ;;
    bf16-cl) flags=(--amp bf16 --channels-last --ratio-modes) ;;
    compile) flags=(--compile --ratio-modes) ;;
  esac
  echo "==> bench_arch: $mode"
  if "$PY" benchmarks/bench_arch.py --device "$DEVICE" "${BENCH[@]}" "${flags[@]}" > "$OUT/bench_$mode.md" 2> "$OUT/bench_$mode.log"; then
    cat "$OUT/bench_$mode.md"
  else
    echo "FAILED ($OUT/bench_$mode.log):"; tail -5 "$OUT/bench_$mode.log"
  fi
done

# ---------------------------------------------------------------- 2. training iterations under torchrun (nccl)
DATA="$(cd "$OUT" && pwd)/faces"
"$PY" - "$DATA" <<'PYEOF'
import importlib.util
import sys
spec = importlib.util.spec_from_file_location('test_helpers', 'tests/conftest.py')  # the suite's real-face pairs
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
helpers._write_train_val_faces(sys.argv[1], 16, 128, 8)
PYEOF
DATA_OPTS=(
  "datasets:train:dataroot_gt=$DATA/train/gt" "datasets:train:dataroot_lq=~" "datasets:train:io_backend:type=disk"
  "datasets:train:num_worker_per_gpu=0" "datasets:train:batch_size_per_gpu=4"
  "datasets:val_celeba:dataroot_gt=$DATA/val/gt" "datasets:val_celeba:dataroot_lq=~" "datasets:val_celeba:io_backend:type=disk"
  "datasets:val_helen:dataroot_gt=$DATA/val/gt" "datasets:val_helen:dataroot_lq=~" "datasets:val_helen:io_backend:type=disk"
  "val=~"  # no validation: the option files' LPIPS needs local AlexNet weights
  "train:total_iter=$ITERS" "logger:print_freq=1" "logger:save_checkpoint_freq=$ITERS"
  "logger:use_tb_logger=false"
)
train() {  # name, option file, extra --force_yml entries...
  local name=$1 opt=$2; shift 2
  echo "==> torchrun training: $name ($ITERS iterations)"
  if "$PY" -m torch.distributed.run --nproc_per_node=1 --master_port=$((29500 + RANDOM % 1000)) \
      sfmnet_plugin/train.py -opt "$opt" --launcher pytorch \
      --force_yml "name=$name" "${DATA_OPTS[@]}" ${TINY[@]+"${TINY[@]}"} "$@" > "$OUT/train_$name.log" 2>&1; then
    echo "$name ok"
  else
    echo "$name FAILED ($OUT/train_$name.log):"; tail -5 "$OUT/train_$name.log"
  fi
}
train gpu_check_sfmnet options/train_SFMNet_x8.yml
train gpu_check_sfmnet_bf16 options/train_SFMNet_x8.yml "train:mixed_precision=bf16"
train gpu_check_sfmnet_gan options/train_SFMNet_GAN_x8.yml "path:pretrain_network_g=~" "train:perceptual_opt=~"

# ---------------------------------------------------------------- 3. ONNX export and ONNX Runtime parity
echo "==> sfmnet-export (small SFMNet) and ONNX Runtime parity"
"$PY" - "$OUT" <<'PYEOF' || echo "ONNX check FAILED"
import sys, torch
import sfmnet_plugin  # noqa: F401
from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_cli.export import main
torch.manual_seed(0)
torch.save({'params': SFMNet(num_feat=16, num_heads=2).state_dict()}, f'{sys.argv[1]}/small.pth')
sys.exit(main(['--checkpoint', f'{sys.argv[1]}/small.pth', '--arch-json', '{"type": "SFMNet", "num_feat": 16, "num_heads": 2}',
               '--lr-size', '16', '--output', f'{sys.argv[1]}/small.onnx', '--overwrite']))
PYEOF

# ---------------------------------------------------------------- summary
echo; echo "== summary: last logged iteration of each training run"
echo "| run | last log line |"; echo "|---|---|"
for log in "$OUT"/train_*.log; do
  line=$(grep -h "iter:" "$log" | tail -1 | sed 's/|/\//g' || true)
  echo "| $(basename "$log" .log) | ${line:-no iteration logged (see the log)} |"
done
