"""dfgraph measured side by side with Modular Diffusers and hand-written Python (`make bench`).

    python -m benchmarks [--quick] [--out PATH]   # every case; writes benchmarks/RESULTS.md

One module per concern: `timing` (interleaved repeats, tables, commit, machine), `results` (a case's
outcome, RESULTS.md), `overhead` (cases 1 and 2: loop and sequential overhead), `scaling` (case 3:
check and compile time up to 100,000 blocks), `end_to_end` (case 4: tiny text2img on the CPU), `gpu`
(case 5: streams, fusion and CUDA-graph capture on a GPU). Each case module also runs alone:
`python -m benchmarks.scaling --max-blocks 10000`.
"""
