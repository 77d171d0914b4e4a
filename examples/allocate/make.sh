#!/bin/sh
# Regenerates every file in this folder: the instance and votes (generate.py), then the two signals with
# allonet. ALLONET picks the binary (default: `allonet` on PATH), MODEL where the model goes (3.7 MB, not
# committed). Training is seeded, so the same binary writes the same bytes.
set -eu
cd "$(dirname "$0")"
ALLONET=${ALLONET:-allonet}
MODEL=${MODEL:-${TMPDIR:-/tmp}/allonet-rf4-model.json}

python3 generate.py
"$ALLONET" model train --data ../op-rf4/rf4_training.csv --target rf4_allocation --trees 200 --seed 42 -o "$MODEL"
"$ALLONET" recommend --model "$MODEL" --proposals ../op-rf4/rf4_training.csv --json > recommend.json
"$ALLONET" tally votes.json --json > tally.json
python3 generate.py --check
