r"""Configs of the addition problem (the paper's Sec. 4.1, Figure 3).

    python -m experiments.addition                                            # default
    python -m experiments.addition --config=experiments/configs/addition.py:cpu_T150

Named configs (``--config=experiments/configs/addition.py:<name>``):
  default     the main job: np, irnn, irnn_scaled at T=50, 3 learning rates x 4 seeds,
              10,000 steps of batch 16 (160,000 sequences), a few minutes on 2 CPU cores.
  paper_T<T>  the paper's protocol exactly (METHOD.md), T in 150, 200, 300, 400, 500:
              its seven variants, SGD lr 0.001, clip 10, batch 1, a fixed pool of
              100,000 training sequences, 10 epochs (1,000,000 updates), 10,000 test
              sequences; one seed (the paper reports one run per cell).
  paper_T150_whx_input, paper_T150_first10, paper_T150_clip_value
              paper_T150 with one choice the paper leaves open read the other way: W_hx's
              N = the input size (std about 1.40 instead of 0.14); Hochreiter and
              Schmidhuber's marker placement (first10: the first marker in the first 10
              steps, the second in the first half); gradients clipped per entry at 10
              instead of by their global norm.
  cpu_T<T>    the reproduction study's budget on 2 CPU cores: the seven variants plus
              irnn_le, batch 16, 20,000 steps (320,000 sequences: 32% of the paper's
              1,000,000), the same 100,000-sequence pool, learning rates 0.002, 0.008,
              0.032 (bracketing 0.004 and 0.016, the square-root and linear batch-16
              equivalents of the paper's 0.001 at batch 1), 3 seeds.
  frontier_T<T>  where each variant stops working (T in 10, 20, 40, 60, 80, 100, 150,
              200): np, irnn, irnn_scaled, nrnn, np_tanh, lstm, the same budget at every T:
              SGD, clip 10, batch 16, fresh sequences, 3,000 steps (48,000 sequences),
              learning rates 0.002, 0.008, 0.032 chosen on the validation set, 5 seeds,
              2,000 test and 2,000 validation sequences. `reproduce --budget=frontier`
              does not run a longer T once no run succeeded at two lengths in a row.
  hs_T<T>     Hochreiter and Schmidhuber's protocol (T in 20, 40, 60, 80, 100), to hold
              our numbers against benchmarks that use it: np and irnn, hidden 40, Adam lr
              1e-3, batch 500, global-norm clip 3, 40,000 updates, the first marker in the
              first 10 steps and the second in the first half (marker_placement=first10),
              a run succeeding when at least 90% of 10,000 test sequences are within 0.04;
              5 seeds.
  hs_pool_T60  hs_T60 trained on a fixed pool of 100,000 sequences reshuffled every epoch
              (train_size=100000: 200 updates an epoch, 200 epochs), as published
              benchmarks with this protocol do, instead of fresh sequences every update.
  hs_pool_plrnn_T60  the same with np-RNN started as a public np-RNN baseline code starts
              it (init np_plrnn: W_hx ~ N(0, 0.0033^2), W_hy ~ N(0, 0.049^2), output bias
              ~ U(-0.158, 0.158)).
  smoke       a tiny run for the tests.
"""

from nprnn_jax import config as config_lib
from nprnn_jax import rnn

SEQ_LENS = (150, 200, 300, 400, 500)
FRONTIER_SEQ_LENS = (10, 20, 40, 60, 80, 100, 150, 200)
FRONTIER_INITS = ("np", "irnn", "irnn_scaled", "nrnn", "np_tanh", "lstm")
HS_SEQ_LENS = (20, 40, 60, 80, 100)


def paper(seq_len: int, task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = rnn.PAPER_VARIANTS
    config.seq_len = seq_len
    config.optimizer = "sgd"
    config.learning_rates = (0.001,)
    config.clip_norm = 10.0
    config.batch_size = 1
    config.train_size = 100_000
    config.num_steps = 1_000_000
    config.eval_every = 20_000
    config.test_size = 10_000
    config.num_seeds = 1
    return config


# The readings of paper_T150 (issue 33): one open choice of the paper's protocol changed each.
READINGS = {"whx_input": {"input_init_n": "input"}, "first10": {"marker_placement": "first10"},
            "clip_value": {"clip_by": "value"}}


def paper_reading(reading: str, seq_len: int = 150, task: str = "addition"):
    config = paper(seq_len, task)
    for name, value in READINGS[reading].items():
        config[name] = value
    return config


def cpu(seq_len: int):
    config = paper(seq_len)
    config.inits = rnn.PAPER_VARIANTS + ("irnn_le",)
    config.batch_size = 16
    config.num_steps = 20_000
    config.eval_every = 2_000
    config.learning_rates = (0.002, 0.008, 0.032)
    config.num_seeds = 3
    return config


def frontier(seq_len: int, task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = FRONTIER_INITS
    config.seq_len = seq_len
    config.optimizer = "sgd"
    config.clip_norm = 10.0
    config.batch_size = 16
    config.train_size = 0
    config.learning_rates = (0.002, 0.008, 0.032)
    config.num_seeds = 5
    # 3,000 steps: the whole frontier (2 tasks x 8 lengths x 90 runs, the LSTM about 4 runs'
    # cost) is about 2.7 h of this 2-core machine at the cpu jobs' 18.2 us per run-step-timestep
    config.num_steps = 3_000
    config.eval_every = 1_000
    config.test_size = 2_000
    # The variants that share a cell as one compiled program (np, irnn, irnn_scaled, nrnn: ReLU;
    # np_tanh; lstm): speed only, each variant's records equal its own program's (tested)
    config.group_inits = "on"
    return config


def hochreiter_schmidhuber(seq_len: int, task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = ("np", "irnn")
    config.seq_len = seq_len
    config.marker_placement = "first10"
    config.hidden_size = 40
    config.optimizer = "adam"
    config.learning_rates = (1e-3,)
    config.clip_norm = 3.0
    config.batch_size = 500
    config.train_size = 0
    config.num_steps = 40_000
    config.eval_every = 4_000
    config.test_size = 10_000
    config.success_share = 0.9
    config.num_seeds = 5
    return config


def hs_pool(seq_len: int, inits=("np", "irnn"), task: str = "addition"):
    config = hochreiter_schmidhuber(seq_len, task)
    config.train_size = 100_000
    config.inits = inits
    config.log_every = 100  # the training loss every 100 updates: how the start shapes the first 1,000
    return config


def smoke(task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = ("np", "irnn")
    config.hidden_size = 8
    config.seq_len = 10
    config.learning_rates = (0.01, 0.05)
    config.num_seeds = 2
    config.num_steps = 20
    config.eval_every = 10
    config.test_size = 64
    config.train_size = 64
    config.figures = False  # the tests draw figures where they check them (--config.figures=true)
    return config


def default(task: str = "addition"):
    config = config_lib.base_config(task)
    config.inits = ("np", "irnn", "irnn_scaled")
    config.seq_len = 50
    config.learning_rates = (0.003, 0.01, 0.03)
    config.num_seeds = 4
    config.num_steps = 10_000
    config.eval_every = 2_000
    config.clip_norm = 10.0
    return config


def named_configs(task: str = "addition") -> dict:
    """Name -> builder of every named config of this config file."""
    out = {"default": lambda: default(task), "smoke": lambda: smoke(task)}
    for t in SEQ_LENS:
        out[f"paper_T{t}"] = (lambda t=t: paper(t, task))
        out[f"cpu_T{t}"] = (lambda t=t: cpu(t))
    out["hs_pool_T60"] = lambda: hs_pool(60, task=task)
    out["hs_pool_plrnn_T60"] = lambda: hs_pool(60, ("np_plrnn",), task)
    for reading in READINGS:
        out[f"paper_T150_{reading}"] = (lambda r=reading: paper_reading(r, 150, task))
    for t in FRONTIER_SEQ_LENS:
        out[f"frontier_T{t}"] = (lambda t=t: frontier(t, task))
    for t in HS_SEQ_LENS:
        out[f"hs_T{t}"] = (lambda t=t: hochreiter_schmidhuber(t, task))
    return out


def pick(named: dict, name):
    """The config ``name`` (None: "default") of ``named``, or ValueError naming the valid ones."""
    name = name or "default"
    if name not in named:
        raise ValueError(f"unknown named config {name!r}; valid: {', '.join(named)}")
    return named[name]()


def get_config(name=None):
    return pick(named_configs(), name)
