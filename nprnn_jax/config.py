"""Every setting of an experiment, declared once: name, default, meaning, check.

The binaries (`experiments/*.py`) and their configs (`experiments/configs/*.py`)
build an `ml_collections.ConfigDict` from `base_config(task)` and override what
they need; `validate` checks and normalizes it (the one place values are
checked), `to_json` is what the workdir's config.json records and the resume
check compares, and `settings_help` lists every setting with its value::

    config = base_config("addition")
    config.inits = ("np", "irnn")
    config = validate(config)          # ConfigError naming the setting on a bad value;
                                       # a read-only `Settings` (plain Python)

Settings marked ``execution`` change speed only (how the grid is laid over the
hardware); `nprnn_jax.parallel.execution_plan` resolves them into an explicit
plan. Settings marked ``per_init`` may be given per init under
``config.per_init.<init>`` (e.g. the paper's MNIST comparison: np-RNN with SGD,
IRNN with RMSprop 1e-6, in one experiment).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nprnn_jax import checks, rnn, tasks, train
from nprnn_jax import workdir as workdir_lib
from nprnn_jax.parallel import EXECUTIONS, GROUP_INITS, SHARDS  # each vocabulary where it is used
from nprnn_jax.train import OPTIMIZERS  # noqa: F401  (the vocabulary of the optimizer setting, re-exported)

if TYPE_CHECKING:  # the engine (train.py) reads the settings' checks without ml_collections
    import ml_collections

LR_SCHEDULES = ("constant", "step")


ConfigError = checks.ConfigError  # a setting with a value that is not allowed (the message names it)


# --- checks: the rules of `nprnn_jax.checks` (each returns None or what is allowed) -------

INT_MAX = checks.INT_MAX
_int, _float, _one_of, _bool, _str, _tuple = (checks.integer, checks.number, checks.one_of, checks.boolean,
                                               checks.string, checks.sequence)
_ENGINE = train.RULES  # the engine's own values: their rules and defaults are declared in train.py
_DEFAULT = train.DEFAULTS


Setting = checks.Setting  # name, default, meaning, rule (declared where the value is used)
_S = Setting
SETTINGS = (
    # What is compared.
    _S("inits", ("np", "irnn", "irnn_scaled"), "variants compared (rnn.INITS); each is one compiled grid",
       _tuple(_one_of(tuple(rnn.INITS)), unique=True)),
    _S("num_seeds", _DEFAULT["num_seeds"], "seeds per (init, learning rate, dropout); the grid's seed axis", _ENGINE["num_seeds"]),
    _S("seed_offset", _DEFAULT["seed_offset"], "the first seed: seeds are seed_offset .. seed_offset + num_seeds - 1 (split a "
       "sweep into jobs)", _ENGINE["seed_offset"]),
    _S("learning_rates", _DEFAULT["learning_rates"], "base learning rates; a grid axis of one compiled program",
       _ENGINE["learning_rates"], per_init=True),
    _S("dropout_rates", _DEFAULT["dropout_rates"], "dropout rates between hidden and output layer (training only); a grid axis",
       _ENGINE["dropout_rates"]),
    # The model.
    _S("hidden_size", _DEFAULT["hidden_size"], "hidden units N (the paper: 100)", _ENGINE["hidden_size"]),
    _S("input_init_n", _DEFAULT["input_init_n"], "the N of W_hx's std alpha/sqrt(N): hidden (size) or input (size)",
       _ENGINE["input_init_n"]),
    # The optimizer and its schedule.
    _S("optimizer", _DEFAULT["optimizer"], "sgd, momentum (SGD with momentum), rmsprop or adam", _ENGINE["optimizer"],
       per_init=True),
    _S("momentum", _DEFAULT["momentum"], "momentum of optimizer=momentum", _ENGINE["momentum"], per_init=True),
    _S("clip_norm", _DEFAULT["clip_norm"], "the gradient clipping threshold (see clip_by)", _ENGINE["clip_norm"],
       per_init=True),
    _S("clip_by", _DEFAULT["clip_by"], "global_norm: scale the gradient to global norm <= clip_norm; value: clip "
       "each entry to [-clip_norm, clip_norm]", _ENGINE["clip_by"]),
    _S("loss_reduction", _DEFAULT["loss_reduction"], "the objective: the minibatch's mean loss, or its sum (mean x "
       "batch_size: SGD steps batch_size times larger); the logged loss is the mean", _ENGINE["loss_reduction"]),
    _S("lr_schedule", "constant", "constant, or step: the rate times lr_cut_factor at each cut",
       _one_of(LR_SCHEDULES), per_init=True),
    _S("lr_cut_factor", _DEFAULT["lr_cut_factor"], "factor applied to the learning rate at each cut (schedule step)",
       _ENGINE["lr_cut_factor"], per_init=True),
    _S("lr_num_cuts", 2, "cuts at equal intervals of num_steps (schedule step, no lr_cut_steps)", _int(1),
       per_init=True),
    _S("lr_cut_steps", (), "explicit steps of the cuts (schedule step); overrides lr_num_cuts",
       _tuple(_int(1), nonempty=False), per_init=True),
    _S("lr_cut_fractions", (), "the cuts as fractions of num_steps, e.g. 0.33,0.66 (schedule step; "
       "follows num_steps when it is changed); overrides lr_num_cuts", _tuple(_float(0, 1, low_open=True,
                                                                                   high_open=True), nonempty=False),
       per_init=True),
    # The run.
    _S("batch_size", _DEFAULT["batch_size"], "training minibatch size", _ENGINE["batch_size"]),
    _S("num_steps", _DEFAULT["num_steps"], "training steps per run (a multiple of eval_every)", _ENGINE["num_steps"]),
    _S("eval_every", _DEFAULT["eval_every"], "steps between evaluations, checkpoints and progress lines", _ENGINE["eval_every"]),
    _S("log_every", 0, "steps per logged training loss (train_loss.jsonl, TensorBoard); a divisor of eval_every "
       "(0: eval_every)", _int(0)),
    _S("tensorboard", True, "write TensorBoard event files (workdir/tensorboard/<init>/<run>)", _bool),
    _S("figures", True, "draw learning_curves.png, train_loss.png and lr_sensitivity.png beside results.md "
       "(false saves the seconds of drawing them: tests, scripted sweeps)", _bool, output=True),
    # Data: the test set (each task's own settings are declared by its module in nprnn_jax.tasks).
    _S("test_size", 10_000, "test examples evaluated (data sets: 0 = the whole test set)", _int(0)),
    # Execution: speed only, resolved into the plan recorded in config.json.
    _S("unroll", _DEFAULT["unroll"], "scan unroll factor of the recurrence", _ENGINE["unroll"], execution=True),
    _S("backward", _DEFAULT["backward"], "custom (hand-written BPTT VJP) or autodiff", _ENGINE["backward"],
       execution=True),
    _S("remat_every", _DEFAULT["remat_every"], "keep every k-th state for BPTT and recompute the rest (0: off)", _ENGINE["remat_every"],
       execution=True),
    _S("bptt_chunk", -1, "BPTT in chunks of k steps (-1: auto, the divisor of T nearest 100 on CPU; 0: off)",
       _int(-1), execution=True),
    _S("eval_batch_size", _DEFAULT["eval_batch_size"], "test examples run through the network at a time (memory)", _ENGINE["eval_batch_size"],
       execution=True),
    _S("execution", "auto", "runs of one device: vmap, map (one after another) or auto (map on CPU)",
       _one_of(EXECUTIONS), execution=True),
    _S("shard", "auto", "spread over devices: seeds, batch (data parallel), none, or auto", _one_of(SHARDS),
       execution=True),
    _S("group_inits", "auto", "train the inits that share a program (same cell and settings but learning "
       "rates) as one grid: on, off, or auto (on away from a CPU)", _one_of(GROUP_INITS), execution=True),
    _S("host_devices", 0, "CPU: split into this many XLA devices (0: one per core when it divides; 1: off)",
       _int(0), execution=True),
)
PER_INIT = tuple(s.name for s in SETTINGS if s.per_init)


def settings_of(task: str) -> tuple:
    """The settings of the binary for ``task``: the common ones (`SETTINGS`) and the task's own."""
    return SETTINGS + tasks.get(task).settings


def settings_by_name(task: str = None) -> dict:
    """The settings of ``task``'s binary by name; without a task, the common ones and those of
    every registered task (for messages: a name two tasks declare, each with its own default
    and rule, appears once)."""
    if task is not None:
        return {s.name: s for s in settings_of(task)}
    out = {s.name: s for s in SETTINGS}
    for name in tasks.names():
        for setting in tasks.get(name).settings:
            out.setdefault(setting.name, setting)
    return out


def tasks_having(name: str) -> tuple:
    """The tasks whose binaries have setting ``name``."""
    return tuple(t for t in tasks.names() if any(s.name == name for s in settings_of(t)))


def base_config(task: str) -> ml_collections.ConfigDict:
    """A ConfigDict with ``task`` and every setting of that task at its default."""
    import ml_collections

    config = ml_collections.ConfigDict()
    config.task = task
    for setting in settings_of(task):
        config[setting.name] = setting.default
    # Every per-init setting of every init is declared (unset), so that the command line
    # can set any of them (--config.per_init.irnn.learning_rates=1e-5); `validate` drops
    # the unset ones.
    from ml_collections import config_dict

    config.per_init = ml_collections.ConfigDict()
    for init in rnn.INITS:
        config.per_init[init] = ml_collections.ConfigDict(
            {s.name: config_dict.placeholder(type(s.default)) for s in SETTINGS if s.per_init})
    return config


def _normalize(setting: Setting, value):
    """Command-line forms to the declared type: "a,b" and (x,) lists, ints for floats."""
    if isinstance(setting.default, tuple):
        items = value if isinstance(value, (tuple, list)) else (value,)
        flat = []
        for item in items:
            if isinstance(item, str):
                flat.extend(part.strip() for part in item.split(",") if part.strip())
            else:
                flat.append(item)
        kind = type(setting.default[0]) if setting.default else int
        out = []
        for item in flat:
            if kind is float and isinstance(item, str):
                try:
                    item = float(item)
                except ValueError:
                    pass
            elif kind is int and isinstance(item, str) and item.lstrip("-").isdigit():
                item = int(item)
            if kind is float and isinstance(item, int) and not isinstance(item, bool):
                item = float(item)
            out.append(item)
        return tuple(out)
    if isinstance(setting.default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_value(task: str, name: str, value, where: str = "") -> Any:
    """The normalized value of ``task``'s setting ``name``, or `ConfigError` naming it and what is
    allowed."""
    setting = settings_by_name(task)[name]
    value = _normalize(setting, value)
    problem = setting.check(value)
    if problem:
        raise ConfigError(f"{where}{name}={value!r}: {problem}")
    return value


def _check_unknown(keys, allowed, where):
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{where}{key}: no such setting{hint}; allowed: {', '.join(allowed)}")


class Settings(Mapping):
    """A validated config (what `validate` returns): read-only, by attribute or by item
    (``config.hidden_size``, ``config["hidden_size"]``), nested for ``per_init``; plain
    Python, so reading a workdir's config needs no ml_collections. ``to_dict()`` gives
    plain dicts back (to edit and validate again)."""

    __slots__ = ("_items",)

    def __init__(self, items):
        object.__setattr__(self, "_items", {k: Settings(v) if isinstance(v, Mapping) else v
                                            for k, v in dict(items).items()})

    def __getitem__(self, name):
        return self._items[name]

    def __getattr__(self, name):
        if name.startswith("__") or name == "_items":
            raise AttributeError(name)
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}; the config has {', '.join(self._items)}") from None

    def __setattr__(self, name, value):
        raise AttributeError(f"{name}: a validated config is read-only; change the config you validated "
                             "(or config.to_dict()) and validate it again")

    __setitem__ = __setattr__

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __reduce__(self):
        return Settings, (self.to_dict(),)

    def __repr__(self):
        return f"Settings({self.to_dict()!r})"

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Settings) else v for k, v in self._items.items()}


def _plain(config) -> dict:
    """A config (ConfigDict, Settings, dict) as nested plain dicts."""
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return {k: _plain(v) if isinstance(v, Mapping) or hasattr(v, "to_dict") else v for k, v in config.items()}


def validate(config) -> Settings:
    """Checks every setting of ``config`` (a ConfigDict, a dict, or `Settings`) and returns a
    normalized, read-only copy (`Settings`).

    Raises `ConfigError` naming the first bad setting and what is allowed.
    """
    raw = _plain(config)
    task = raw.get("task")
    tasks.get(task)  # ConfigError naming the known tasks
    names = [s.name for s in settings_of(task)]
    _check_unknown([k for k in raw.keys() if k not in ("task", "per_init")], names, "")
    for name in names:
        if name not in raw:
            raise ConfigError(f"{name}: missing from the config")
        raw[name] = check_value(task, name, raw[name])
    per_init = {init: {k: v for k, v in (overrides or {}).items() if v is not None}
                for init, overrides in (raw.get("per_init") or {}).items()}
    per_init = {init: overrides for init, overrides in per_init.items() if overrides}
    _check_unknown(list(per_init.keys()), list(rnn.INITS), "per_init.")
    for init, overrides in per_init.items():
        _check_unknown(list(overrides.keys()), PER_INIT, f"per_init.{init}.")
        for name in list(overrides.keys()):
            overrides[name] = check_value(task, name, overrides[name], f"per_init.{init}.")
    raw["per_init"] = per_init
    config = Settings(raw)
    if config.log_every and config.eval_every % config.log_every:
        raise ConfigError(f"log_every={config.log_every} must divide eval_every={config.eval_every}")
    if config.seed_offset + config.num_seeds - 1 > INT_MAX:
        raise ConfigError(f"seed_offset={config.seed_offset} + num_seeds={config.num_seeds}: the last seed "
                          f"must be <= {INT_MAX}")
    for init in config.inits:
        cuts = init_settings(config, init)["lr_num_cuts"]
        if cuts >= config.num_steps:
            raise ConfigError(f"{'per_init.' + init + '.' if init in per_init else ''}lr_num_cuts={cuts} must be "
                              f"< num_steps={config.num_steps}")
    if config.num_steps % config.eval_every or config.eval_every > config.num_steps:
        near = min((d for d in range(1, config.num_steps + 1) if config.num_steps % d == 0),
                   key=lambda d: (abs(d - min(config.eval_every, config.num_steps // 10 or 1)), d)) \
            if config.num_steps <= 10**7 else None
        raise ConfigError(f"num_steps={config.num_steps} must be a multiple of eval_every={config.eval_every} "
                          "(every segment has the same length, so the grid compiles once; eval_every <= num_steps)"
                          + (f"; e.g. --config.eval_every={near}" if near else ""))
    for init in config.inits:
        cut_steps(init_settings(config, init), config.num_steps, f"per_init.{init}." if init in per_init else "")
    problem = tasks.get(task).check(config)
    if problem:
        raise ConfigError(problem)
    return config


# Settings that only one choice of another setting reads: (setting, the setting it depends on,
# the value that reads it).
_READ_ONLY_WITH = {"momentum": ("optimizer", "momentum"), "lr_cut_steps": ("lr_schedule", "step"),
                   "lr_cut_fractions": ("lr_schedule", "step"), "lr_num_cuts": ("lr_schedule", "step"),
                   "lr_cut_factor": ("lr_schedule", "step")}


def refuse_ignored(config, typed) -> None:
    """`ConfigError` for a setting the user typed (``typed``: names such as ``momentum`` or
    ``per_init.irnn.momentum``, e.g. a command line's ``--config.<name>``) that no trained init
    reads: a top-level one that every init's optimizer or schedule ignores (``momentum`` with SGD,
    cuts with the constant schedule), a per-init override its own init ignores, or a per-init
    override of an init the run does not train. A top-level setting read by at least one init
    counts as read (MNIST's cuts, with IRNN's schedule constant); settings a config file carries
    for a variant it does not pick are not the user's and are left alone."""
    typed = set(typed)
    untrained = sorted(t for t in typed if t.startswith("per_init.") and t.split(".")[1] not in config.inits)
    if untrained:
        raise ConfigError(f"{untrained[0]} is ignored: {untrained[0].split('.')[1]} is not trained "
                          f"(inits={','.join(config.inits)}); add it to inits or drop the setting")
    for name, (other, reader) in _READ_ONLY_WITH.items():
        if name in typed and not any(init_settings(config, i)[other] == reader for i in config.inits):
            kinds = sorted({init_settings(config, i)[other] for i in config.inits})
            raise ConfigError(f"{name}={config[name]!r} is ignored: no init has {other}={reader} (they have "
                              f"{other}={', '.join(kinds)}); drop it, or set {other}={reader}")
        for init in config.inits:
            overrides = config.per_init.get(init) or {}
            if f"per_init.{init}.{name}" in typed and name in overrides and init_settings(config, init)[other] != reader:
                raise ConfigError(f"per_init.{init}.{name}={overrides[name]!r} is ignored: {init} has "
                                  f"{other}={init_settings(config, init)[other]}; drop it, or set "
                                  f"per_init.{init}.{other}={reader}")


def init_settings(config, init: str) -> dict:
    """The per-init settings (`PER_INIT`) in effect for ``init``: its overrides, else the config's."""
    overrides = (config.get("per_init") or {}).get(init) or {}
    return {name: overrides[name] if name in overrides else config[name] for name in PER_INIT}


def cut_steps(settings: dict, num_steps: int, where: str = "") -> tuple:
    """The steps at which the learning rate is cut (empty for a constant schedule).

    Explicit ``lr_cut_steps``, else ``round(f * num_steps)`` for each of
    ``lr_cut_fractions``, else ``lr_num_cuts`` cuts at equal intervals:
    ``round(c * num_steps / (lr_num_cuts + 1))`` for c = 1..lr_num_cuts.
    """
    if settings["lr_schedule"] == "constant":
        return ()
    if settings["lr_cut_steps"] and settings.get("lr_cut_fractions"):
        raise ConfigError(f"{where}lr_cut_steps={tuple(settings['lr_cut_steps'])} and lr_cut_fractions="
                          f"{tuple(settings['lr_cut_fractions'])}: give one of them")
    fractions = tuple(settings.get("lr_cut_fractions") or ())
    if fractions and not settings["lr_cut_steps"]:
        if list(fractions) != sorted(set(fractions)):
            raise ConfigError(f"{where}lr_cut_fractions={fractions}: must be increasing fractions of num_steps")
        steps = tuple(round(f * num_steps) for f in fractions)
        if list(steps) != sorted(set(steps)) or steps[0] < 1 or steps[-1] >= num_steps:
            raise ConfigError(f"{where}lr_cut_fractions={fractions}: with num_steps={num_steps} they fall on the "
                              f"steps {steps}; the cuts must be on increasing steps in [1, {num_steps})")
        return steps
    steps = tuple(settings["lr_cut_steps"]) or tuple(round(f * num_steps) for f in fractions) or tuple(
        round(c * num_steps / (settings["lr_num_cuts"] + 1)) for c in range(1, settings["lr_num_cuts"] + 1))
    return check_cut_steps(steps, num_steps, where)


def check_cut_steps(steps: tuple, num_steps: int, where: str = "") -> tuple:
    """``steps`` if they are increasing steps in [1, num_steps), else `ConfigError` (`train.check_cut_steps`)."""
    return train.check_cut_steps(steps, num_steps, where, error=ConfigError)


def to_json(config) -> dict:
    """The settings as plain JSON types (tuples as lists), per_init included."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in sorted(value.items())}
        return value
    return plain(config)


def with_defaults(config_json: dict) -> dict:
    """A config's JSON with every setting it lacks (added in a later version) at its default,
    which is what the version that wrote it ran with."""
    config_json = dict(config_json)
    if config_json.get("task") in tasks.names():
        for setting in settings_of(config_json["task"]):
            config_json.setdefault(setting.name, to_json({"v": setting.default})["v"])
    return config_json


def result_settings(config_json: dict) -> dict:
    """The part of a config's JSON that results depend on: execution settings, output settings
    (figures) and data locations left out (the data themselves are compared by their fingerprint, the task's
    record, so the same data under another path resume, and other data do not)."""
    task = config_json.get("task")
    by_name = settings_by_name(task if task in tasks.names() else None)
    return {k: v for k, v in config_json.items()
            if not (k in by_name and (by_name[k].execution or by_name[k].location or by_name[k].output))}


def check_settings(config_json: dict):
    """None when every setting of a config's JSON (a workdir's record) is one the command line
    would accept, else the first bad one and what is allowed (a record without a known task,
    a library caller's, has nothing to check)."""
    if config_json.get("task") not in tasks.names():
        return None
    settings = with_defaults(config_json)
    try:
        for setting in settings_of(config_json["task"]):
            value = settings[setting.name]
            check_value(config_json["task"], setting.name, tuple(value) if isinstance(value, list) else value)
    except ConfigError as error:
        return str(error)
    return None


# How a workdir reads the settings of its config.json (`workdir.Schema`).
SCHEMA = workdir_lib.Schema(with_defaults=with_defaults, result_settings=result_settings, check=check_settings)


def settings_help(config) -> str:
    """Every setting of ``config`` with its value and meaning, one per line."""
    lines = []
    for setting in settings_of(config.task):
        value = config[setting.name]
        shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
        mark = " [speed only]" if setting.execution else " [per init]" if setting.per_init else ""
        lines.append(f"  --config.{setting.name}={shown}  {setting.meaning}{mark}")
    for init, overrides in (config.get("per_init") or {}).items():
        for name, value in overrides.items():
            shown = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
            lines.append(f"  --config.per_init.{init}.{name}={shown}  {init}'s own {name}")
    return "\n".join(lines)
