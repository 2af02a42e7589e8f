r"""Configs of the multiplication problem (the paper's Sec. 4.1, Figure 4).

    python -m experiments.multiplication --config=experiments/configs/multiplication.py:cpu_T50

Named configs:
  default     np, irnn, irnn_scaled at T=50, as the addition main job.
  paper_T<T>  the paper's protocol (METHOD.md), T in 50, 100, 200: np, irnn, irnn_scaled,
              nrnn, np_tanh; SGD, batch 16, lr 2e-4 cut by 10x twice at equal intervals,
              100 epochs of a 100,000-sequence pool (625,000 updates), clip 10 (the paper
              does not state one: ours), one seed.
  cpu_T<T>    the reproduction study's budget: 20,000 steps of batch 16 (320,000
              sequences: 3.2% of the paper's 10,000,000), the same schedule compressed
              (cuts at 1/3 and 2/3), learning rates 2e-4 (the paper's), 2e-3, 2e-2, 3 seeds.
  frontier_T<T>  the addition file's frontier (T in 10 ... 200), the same budget and grid.
  smoke       a tiny run for the tests.
"""

from experiments.configs import addition

SEQ_LENS = (50, 100, 200)
VARIANTS = ("np", "irnn", "irnn_scaled", "nrnn", "np_tanh")


def paper(seq_len: int):
    config = addition.paper(seq_len, "multiplication")
    config.inits = VARIANTS
    config.batch_size = 16
    config.learning_rates = (2e-4,)
    config.lr_schedule = "step"
    config.lr_cut_factor = 0.1
    config.lr_num_cuts = 2
    config.num_steps = 625_000
    config.eval_every = 6_250
    return config


def cpu(seq_len: int):
    config = paper(seq_len)
    config.num_steps = 20_000
    config.eval_every = 2_000
    config.learning_rates = (2e-4, 2e-3, 2e-2)
    config.num_seeds = 3
    return config


def named_configs():
    named = {"default": lambda: addition.default("multiplication"),
                "smoke": lambda: addition.smoke("multiplication")}
    for t in SEQ_LENS:
        named[f"paper_T{t}"] = (lambda t=t: paper(t))
        named[f"cpu_T{t}"] = (lambda t=t: cpu(t))
    for t in addition.FRONTIER_SEQ_LENS:
        named[f"frontier_T{t}"] = (lambda t=t: addition.frontier(t, "multiplication"))
    return named


def get_config(name=None):
    return addition.pick(named_configs(), name)
