#!/bin/bash
# SoftREPA claim (issue 12), one seed: stage 1 (2500 steps) then stage 2 (600 steps); each stage
# evaluated with 256 samples, 40 sampler steps. Resumable: finished parts are skipped.
s=$1
cd /work/study2
OUT=runs/softrepa-study
mkdir -p $OUT
P=$OUT/pretrain-s$s; S=$OUT/soft-s$s
while pgrep -f "out $P" > /dev/null; do sleep 30; done
if [ ! -f $P/samples.png ]; then
  if [ -d $P ]; then npx diffactor train --resume $P; else npx diffactor train --spec specs/softrepa-pretrain.yaml --seed $s --out $P; fi
fi
[ -s $P/eval.json ] || npx diffactor eval --checkpoint $P/checkpoint.safetensors --samples 256 --sample-steps 40 --json > $P/eval.json
if [ ! -f $S/samples.png ]; then
  if [ -d $S ]; then npx diffactor train --resume $S; else npx diffactor train --spec specs/softrepa.yaml --seed $s --out $S --set softrepa.init=$PWD/$P/checkpoint.safetensors; fi
fi
[ -s $S/eval.json ] || npx diffactor eval --checkpoint $S/checkpoint.safetensors --samples 256 --sample-steps 40 --json > $S/eval.json
echo SEED $s DONE
