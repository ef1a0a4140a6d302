"""Benchmark of `vidcls predict` against the Python pipeline users write and the compute bound.

In one run on one machine, for r2plus1d_18, s3d and i3d (random-init exports) and the default
motion model, at 1 clip per video, in fp32 and in the fast CPU path (`--precision bf16`):

  1. vidcls    `vidcls predict -f jsonl` on a generated corpus: videos/s and clips/s from its
               run summary, time per stage from the records' `timings`, peak RSS (/usr/bin/time);
  2. python    scripts/reference_predict.py (PyAV decode of the whole file, torchvision-style
               transforms, the same TorchScript), one video after another, on the same files and
               views; bf16 the way vidcls does it (vbench.python_pipeline);
  3. model     the TorchScript model alone on random tensors of the same shape, precision and
               batch sizes as the vidcls run (vbench.model_alone: the compute bound);
  4. ffmpeg    `ffmpeg -i FILE -f null -` of the same files (decoding alone, every frame).

Then the defaults (vbench.defaults): each model with no speed flags next to the Python pipeline
in fp32, the model alone at what the defaults chose, and decoding alone (a stand-in model that
only averages its input), giving each model's pipeline efficiency; r2plus1d_18 at 10 clips x 3
crops on a few videos; one centre clip from a 10-minute video
vs from a 10-second video; peak RSS labelling 500 short videos vs 50 with the default model;
bf16 vs fp32 top-1 agreement of the motion model on the corpus and on a generated motion set
(scripts/motion_dataset.py). Writes docs/BENCHMARKS.md and docs/benchmarks.json.

Then the sections with pages of their own (each selected by name with --only or left out with
--skip; `main` is all of the above): train (vbench.train: `vidcls train` on actions the built-in
model never saw -> TRAINING-BENCH.md), report-scale (vbench.report_scale: `--format html` on
1000 inputs -> report-scale.md) and embed (vbench.embed: `vidcls embed` beside `vidcls predict`
-> EMBED-BENCH.md). Every page starts, under its title, with the marker
`<!-- figures: `COMMAND` at COMMIT -->` naming the command that wrote it and the commit it ran at
(vbench.page), and a line with the machine, the date and the load; a full run refuses a tree with
uncommitted changes unless --allow-dirty (the pages then say COMMIT+dirty).

Modules: setup (run sizes, machine, corpus, motion set, model exports; cached under target/bench/
by a key of everything that made them), runners (the four tools), sections (the measurements),
defaults (the defaults section), stand_in (its model), results (typed results and their JSON),
verdicts (targets and notes), report (the Markdown, above its marker in BENCHMARKS.md), page
(the marker and the head of every page), train, report_scale and embed (the other sections).

    scripts/bench.sh                      # builds vidcls, then the full run (main: about 20 minutes on 2 cores)
    scripts/bench.sh --quick              # smoke run, written under target/bench/quick/
    scripts/bench.sh run --only train     # one section (main, train, report-scale, embed)
    scripts/bench.sh rerun motion-set     # one section again (motion-set, long, rss, defaults),
                                          # merged into docs/benchmarks.json
    scripts/bench.sh report               # rewrite docs/BENCHMARKS.md from docs/benchmarks.json
"""
