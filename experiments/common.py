"""What every benchmark binary shares: the config flag, the device setup, the error contract.

A binary is flags -> config, validated once -> one library call (`experiment.run_validated`, the
body of `experiment.train_and_evaluate`)::

    python -m experiments.addition                                   # its default config
    python -m experiments.addition --config=experiments/configs/addition.py:cpu_T150
    python -m experiments.addition --config.inits=np,irnn --config.num_seeds=2 --workdir=/tmp/run
    python -m experiments.addition --show_config                     # every setting, value, meaning

Bad input (an unknown setting or value, a missing or corrupt data file, a
workdir of a different config) ends with one line ``error: ...`` on stderr and
exit status 2, and leaves an existing workdir as it was.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import sys
import threading
import time

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
CONFIGS = pathlib.Path(__file__).resolve().parent / "configs"


TASK = {"name": None, "fixed": False}  # the binary's task (fixed: a per-task alias), for messages

# The config of `python -m experiments.main` without --config: the README's main job.
MAIN_CONFIG = CONFIGS / "addition.py"


def config_files() -> dict:
    """The config files found in experiments/configs, ``{task: path}`` (each names its task)."""
    return {p.stem: p for p in sorted(CONFIGS.glob("*.py")) if p.stem != "__init__"}


def _config_spec(argv) -> tuple:
    """(path, name) of the --config of ``argv`` (MAIN_CONFIG's default when none is given)."""
    spec = next((a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")), str(MAIN_CONFIG))
    path, _, name = spec.partition(":")
    return path, name or None


def config_task(argv):
    """The task that the config file of ``argv`` names (``config.task``), or None when it cannot be
    read (the flag parsing then says why). Loading it imports the task module that the file
    imports, which registers a task of one's own."""
    import importlib.util

    path, name = _config_spec(argv)
    try:
        spec = importlib.util.spec_from_file_location(f"_nprnn_config_{pathlib.Path(path).stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config(name) if name else module.get_config()
        task = config.get("task")
    except Exception:  # noqa: BLE001  reported by the flag parsing, with its own message
        return None
    return task if isinstance(task, str) else None


def define_flags(task, argv=None):
    """The flags of a binary in `FLAGS`: --config (+ overrides), --workdir, --show_config.
    ``task``: the task of a per-task alias (``experiments.addition``); None for
    ``experiments.main``, whose task is the one its config names. ``argv``: the command line
    whose --config.<name> overrides are registered (default sys.argv)."""
    from nprnn_jax import config as config_lib
    from nprnn_jax import tasks

    argv = sys.argv if argv is None else argv
    fixed = task is not None
    task = task if fixed else config_task(argv)
    TASK.update(name=task, fixed=fixed)
    path = CONFIGS / f"{task}.py" if fixed else MAIN_CONFIG
    names = (", ".join(s.name for s in config_lib.settings_of(task)) if task in tasks.names()
             else "see --show_config")
    found = ", ".join(str(p.relative_to(CONFIGS.parent.parent)) for p in config_files().values())
    config_flags.DEFINE_config_file(
        "config", str(path),
        f"A config file and optional named config, path.py[:name] (default: {path.name}'s default; names: "
        f"see its docstring{'' if fixed else '; the config names its task; config files here: ' + found}). "
        f"Override any setting with --config.<name>=value; settings: {names}. "
        "--show_config lists them with their values and meanings.", lock_config=True, flag_values=FLAGS,
        sys_argv=argv)
    flags.DEFINE_string("workdir", f"workdirs/{task}" if fixed else None,
                        "Output folder (resumes if it holds the same config)"
                        + ("." if fixed else "; default workdirs/<the config's task>."), flag_values=FLAGS)
    flags.DEFINE_bool("show_config", False, "Print every setting with its value and meaning, then exit.",
                      flag_values=FLAGS)
    flags.DEFINE_bool("distributed", False, "Multi-host: jax.distributed.initialize() before the run; the "
                      "coordinator comes from the environment (TPU pods, SLURM) or the three flags below. "
                      "Every process runs the same command on a shared workdir; process 0 writes the files.",
                      flag_values=FLAGS)
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (--distributed).", flag_values=FLAGS)
    flags.DEFINE_integer("num_processes", None, "Number of processes (--distributed).", flag_values=FLAGS)
    flags.DEFINE_integer("process_id", None, "This process's index (--distributed).", flag_values=FLAGS)
    if _IN_PROCESS["on"]:
        module = f"experiments.{task if fixed else 'main'}"
    else:
        main_module = sys.modules["__main__"].__name__ if "__main__" in sys.modules else "__main__"
        module = sys.argv[0] if main_module == "__main__" else main_module
    for name in ("config", "workdir", "show_config", "distributed"):  # listed by --help of the binary
        FLAGS.register_key_flag_for_module(module, FLAGS[name])


class ToolExit(BaseException):
    """The end of a tool called in process (`main`): its exit status. A BaseException, so that
    no ``except Exception`` on the way turns it into an unexpected failure."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


# Whether a tool runs inside another program (`main`, the tests): it then raises `ToolExit`
# instead of ending the process, and leaves the process's environment (XLA_FLAGS) alone.
_IN_PROCESS = {"on": False}


def _exit(code: int):
    sys.stdout.flush()
    sys.stderr.flush()
    if _IN_PROCESS["on"]:
        raise ToolExit(code)
    os._exit(code)  # at once: no teardown of orbax's and JAX's threads printing after the last line


def _check_platform():
    """One error line when the backend that JAX_PLATFORMS asks for cannot start here (JAX raises an
    AssertionError without a message for 'cuda' on a machine without CUDA)."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if not platforms:
        return
    import jax
    try:
        jax.devices()
    except (RuntimeError, AssertionError, ValueError) as error:
        why = (str(error).splitlines() or [""])[0][:160] or "no message"
        _error(f"JAX_PLATFORMS={platforms!r}: JAX cannot start that backend on this machine ({type(error).__name__}: "
               f"{why}); unset JAX_PLATFORMS or name a backend this machine has, e.g. cpu")


def _error(message: str):
    print(f"error: {message}", file=sys.stderr)
    _exit(2)


def unexpected(error: BaseException):
    """A failure no check names: one line with its type and message, exit 1; the traceback
    only with NPRNN_TRACEBACK=1."""
    if os.environ.get("NPRNN_TRACEBACK"):
        import traceback
        traceback.print_exception(error)
    message = str(error).splitlines()[0] if str(error) else ""
    print(f"error: unexpected failure ({type(error).__name__}: {message}); this is a bug or an environment "
          "problem: NPRNN_TRACEBACK=1 shows where", file=sys.stderr)
    _exit(1)


def _flag_error(error: Exception, argv):
    """Reports a flag or config-file error as one ``error:`` line (exit 2)."""
    _check_config_file(argv)
    if isinstance(error, (AttributeError, KeyError)):  # ml_collections: an override of no setting
        from nprnn_jax import config as config_lib
        bad = [a.split("=", 1)[0][len("--config."):] for a in argv[1:] if a.startswith("--config.")]
        task = TASK["name"]
        known = [s.name for s in (config_lib.settings_of(task) if task else config_lib.settings_by_name().values())] + ["per_init"]
        unknown = [b for b in bad if b.split(".")[0] not in known] or bad
        if not unknown:
            _error(f"{_config_path(argv)}: this config file does not define get_config() returning a "
                   "config (see experiments/configs/*.py)" if _config_path(argv) else str(error) or
                   type(error).__name__)
        others = config_lib.tasks_having(unknown[0].split(".")[0])
        if others and task:
            who = f"the {task} binary" if TASK.get("fixed") else f"task {task} (the config's)"
            _error(f"--config.{unknown[0]}: {who} has no such setting (it is a setting of "
                   f"{', '.join(t for t in others if t != task)}); list its settings with --show_config")
        if unknown[0].startswith("per_init."):
            _error(f"--config.{unknown[0]}: this config has no such per_init entry; per_init entries are "
                   "declared in a config file (see --show_config for the ones it has)")
        close = difflib.get_close_matches(unknown[0].split(".")[0], known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        _error(f"--config.{unknown[0]}: no such setting{hint}; list them with --show_config")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    # "Error whilst parsing config file:" is followed by the config file's own message
    _error(lines[0] + (" " + lines[-1] if lines[0].endswith(":") and len(lines) > 1 else ""))


def _config_path(argv):
    for arg in argv[1:]:
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":")[0]
    return None


def _check_config_file(argv):
    path = _config_path(argv)
    if path is None:
        return
    if not pathlib.Path(path).is_file():
        _error(f"--config={path}: no such config file (the configs are in {CONFIGS})")
    import ast
    try:
        tree = ast.parse(pathlib.Path(path).read_text(), path)
    except (SyntaxError, ValueError, UnicodeDecodeError) as error:
        _error(f"--config={path}: the config file is not valid Python ({type(error).__name__}: "
               f"{getattr(error, 'msg', error)}, line {getattr(error, 'lineno', '?')})")
    if not any(isinstance(node, ast.FunctionDef) and node.name == "get_config" for node in tree.body):
        _error(f"--config={path}: the config file defines no get_config() (see experiments/configs/*.py)")


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull", "--help=true")


def _help_if_asked(argv):
    """absl's --help exits 1; ours prints the module's doc and flags and exits 0."""
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        if _IN_PROCESS["on"]:
            import importlib
            binary = TASK["name"] if TASK.get("fixed") else "main"
            main = importlib.import_module(f"experiments.{_IN_PROCESS.get('module') or binary}")
            print(main.__doc__.strip() + "\n")
            print(FLAGS.module_help(main.__name__) if "--helpfull" not in argv else FLAGS.get_help())
        else:
            main = sys.modules.get("__main__")
            if main is not None and main.__doc__:
                print(main.__doc__.strip() + "\n")
            print(FLAGS.main_module_help() if "--helpfull" not in argv else FLAGS.get_help())
        _exit(0)


def parse_tool_flags(argv):
    """The flags parser of every command-line tool (`app.run(main, flags_parser=parse_tool_flags)`):
    --help exits 0, a bad flag is one ``error:`` line with exit 2."""
    _help_if_asked(argv)
    try:
        return FLAGS(argv)
    except flags.Error as error:
        _error(str(error).splitlines()[0] if str(error) else type(error).__name__)


def parse_flags(argv):
    """absl's parser, with every parse error reported as one ``error:`` line (exit 2).

    A setting given twice is refused: ml_collections would append a repeated list
    override to the first instead of replacing it."""
    _help_if_asked(argv)
    seen = set()
    for arg in argv[1:]:
        if arg.startswith("--config.") and "=" in arg:
            name = arg.split("=", 1)[0]
            if name in seen:
                _error(f"{name} is given twice; give each setting once (a list takes a,b,c)")
            seen.add(name)
            parts = name[len("--config."):].split(".")
            if len(parts) > 1 and parts[0] != "per_init":  # only per_init has settings inside it
                _error(f"{name}: {parts[0]} is a setting, not a group of settings; give --config.{parts[0]}=value "
                       "(per-init values go under --config.per_init.<init>.<setting>)")
    try:
        return FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError, OSError) as error:
        _flag_error(error, argv)
    except Exception as error:  # noqa: BLE001  the config file's own code failed (an import, a bug)
        _error(f"--config={_config_path(argv) or 'default'}: the config file failed to load "
               f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})")


def configure_host_devices(config):
    """Splits the CPU into XLA host devices so that the grid runs on every core (before JAX starts;
    in process, `main`, JAX has started: only the checks)."""
    cores = os.cpu_count() or 1
    if config.host_devices > 8 * cores:  # checked whatever XLA_FLAGS says
        from nprnn_jax.config import ConfigError
        raise ConfigError(f"host_devices={config.host_devices}: at most {8 * cores} (8 per core of this machine's "
                          f"{cores}); more devices than cores only slow a run down")
    if _IN_PROCESS["on"] or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    if os.environ.get("JAX_PLATFORMS", "cpu").split(",")[0] not in ("", "cpu"):
        return
    count = config.host_devices or cores
    if config.host_devices == 0:
        from nprnn_jax import parallel  # imports jax without starting a backend
        fits = parallel.layout_kind(config.num_seeds, config.batch_size, count, config.shard) is not None
        # (an explicit shard that does not divide over the cores raises, naming the setting)
        if not fits:
            count = 1
    if count > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={count}").strip()


def check_distributed_flags():
    """The coordinator flags make sense only with --distributed, and the address is host:port."""
    given = [name for name in ("coordinator_address", "num_processes", "process_id") if FLAGS[name].present]
    if given and not FLAGS.distributed:
        _error(f"--{given[0]} is given without --distributed; add --distributed for a multi-process run")
    if FLAGS.coordinator_address is not None:
        host, _, port = FLAGS.coordinator_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            _error(f"--coordinator_address={FLAGS.coordinator_address!r}: expected host:port (a port 1-65535)")
        import socket
        try:
            socket.getaddrinfo(host.strip("[]"), int(port))
        except OSError as error:  # the host name does not resolve: no use waiting for it
            _error(f"--coordinator_address={FLAGS.coordinator_address!r}: the host {host!r} does not resolve "
                   f"({error.strerror or error}); give process 0's reachable host name or address")
    if FLAGS.num_processes is not None and FLAGS.num_processes < 1:
        _error(f"--num_processes={FLAGS.num_processes}: must be >= 1")
    if FLAGS.process_id is not None and not 0 <= FLAGS.process_id < (FLAGS.num_processes or 2**31):
        _error(f"--process_id={FLAGS.process_id}: must be in 0..num_processes-1")


# How long the processes of a multi-host run wait for each other at start-up before giving up.
DISTRIBUTED_TIMEOUT_S = 300


def start_distributed():
    """`jax.distributed.initialize` from the flags, or from the environment (TPU, SLURM) where
    they are not given; on CPUs the collectives go over gloo. Gives up after
    `DISTRIBUTED_TIMEOUT_S` when the coordinator cannot be reached."""
    import jax
    if os.environ.get("JAX_PLATFORMS", "cpu").split(",")[0] in ("", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                                   num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
                                   initialization_timeout=DISTRIBUTED_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001  jax raises RuntimeError/ValueError/XlaRuntimeError here
        _error(f"--distributed: could not join the run at {FLAGS.coordinator_address or 'the environment'}'s "
               f"coordinator ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})")


def run_main(argv):
    """The ``main`` of every binary: validate, set up devices, train, report."""
    from nprnn_jax import config as config_lib

    if len(argv) > 1:
        _error(f"unexpected arguments: {' '.join(argv[1:])} (settings are --config.<name>=value)")
    if FLAGS.workdir is not None and not FLAGS.workdir.strip():
        _error("--workdir is empty: give the folder for the run's files")
    if "verbosity" in FLAGS and not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    workdir = FLAGS.workdir if FLAGS.workdir is not None else f"workdirs/{TASK['name']}"
    try:
        if FLAGS.config is None or not hasattr(FLAGS.config, "to_dict"):
            _error(f"--config={FLAGS['config'].config_filename}: its get_config() returned "
                   f"{type(FLAGS.config).__name__}, not an ml_collections.ConfigDict (a missing return?)")
        typed_task = any(a.startswith("--config.task=") for a in ARGV)
        if TASK["fixed"] and FLAGS.config.get("task") != TASK["name"]:
            _error(f"task={FLAGS.config.get('task')!r} (from --config={FLAGS['config'].config_filename}"
                   + (" or --config.task" if typed_task else "")
                   + f"): this is the {TASK['name']} binary; run python -m experiments.main "
                   f"--config={FLAGS['config'].config_filename} for that task, or give a config of "
                   f"experiments/configs/{TASK['name']}.py")
        if not TASK["fixed"]:
            if typed_task:
                _error(f"--config.task={FLAGS.config.get('task')}: the config file names its task "
                       f"({config_task(ARGV)!r} in {FLAGS['config'].config_filename}); give a config file of "
                       f"that task instead (config files here: {', '.join(config_files())})")
            TASK["name"] = FLAGS.config.get("task")
        workdir = FLAGS.workdir if FLAGS.workdir is not None else f"workdirs/{FLAGS.config.get('task')}"
        config = config_lib.validate(FLAGS.config)
        # what the user typed and nothing reads is refused (a config file's settings for variants
        # it does not pick are left alone)
        config_lib.refuse_ignored(config, {a.split("=", 1)[0][len("--config."):] for a in ARGV[1:]
                                           if a.startswith("--config.")})
        if FLAGS.show_config:
            print(config_lib.settings_help(config))
            return
        check_distributed_flags()
        if FLAGS.distributed:
            start_distributed()
        else:
            configure_host_devices(config)
        _check_platform()
        from nprnn_jax import experiment
        import jax
        title = experiment.title(config)
        if jax.process_index() == 0:
            overrides = [a for a in ARGV[1:] if a.startswith("--config")]
            print(f"{title}: {len(config.inits)} init(s) x {config.num_steps} steps, on {jax.device_count()} "
                  f"{jax.devices()[0].platform} device(s)"
                  + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else "")
                  + f"; {' '.join(overrides) or 'the default config'} (--show_config lists every setting; "
                  f"{workdir}/config.json records them)", file=sys.stderr)
        start = time.perf_counter()
        from nprnn_jax import runner
        previous = _stop_on_signals(runner.request_stop)
        try:
            experiment.run_validated(config, workdir)  # validated once, above
        except runner.Stopped as stopped:
            runner.clear_stop()
            print(f"{stopped}: " + ("its checkpoint is written" if stopped.step else "nothing trained yet")
                  + f"; run the same command to resume {workdir}", file=sys.stderr)
            _exit(STOPPED_EXIT)
        finally:
            _restore_signals(previous)
        seconds = time.perf_counter() - start
    except (ValueError, OSError) as error:  # ConfigError, DataError, WorkdirConfigError are ValueErrors
        _error(str(error).splitlines()[0] if str(error) else type(error).__name__)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command to resume {workdir} from its last checkpoint",
              file=sys.stderr)
        _exit(130)  # at once: no interpreter teardown racing orbax's and JAX's threads
    except Exception as error:  # noqa: BLE001  the boundary: one line, never a traceback by default
        unexpected(error)
    import jax
    if jax.process_index() != 0:
        return
    workdir = pathlib.Path(workdir)
    print(f"\n{title}: finished in {seconds:.0f} s; results in {workdir}\n")
    print((workdir / "results.md").read_text())


ARGV = sys.argv  # the command line of the binary being run (`main` sets it)

# The exit status of a binary stopped on request (SIGTERM, SIGUSR1) after writing a checkpoint
# (EX_TEMPFAIL: "try again"; `experiments.reproduce` reads it as "stopped, resumable").
STOPPED_EXIT = 75


def _stop_on_signals(request_stop):
    """SIGTERM (what SLURM and `kill` send), SIGUSR1 (what a VM or SLURM's --signal sends before
    preemption) and SIGUSR2 (submitit's warning before a SLURM time limit, which may reach every
    process of the step) stop training at the end of its current segment, with a checkpoint."""
    import signal

    def handler(signum, frame):
        del frame
        print(f"\n{signal.Signals(signum).name}: stopping after the current segment's checkpoint",
              file=sys.stderr, flush=True)
        request_stop()

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}


def _restore_signals(previous: dict):
    import signal
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _define(task: str, argv):
    _check_config_file(argv)
    try:  # ml_collections reads the --config.<name> overrides of the command line while defining the flag
        define_flags(task, argv)
    except (AttributeError, KeyError, ValueError, TypeError, OSError) as error:
        _flag_error(error, argv)
    except Exception as error:  # noqa: BLE001  the config file's own code failed (an import, a bug)
        _error(f"--config={_config_path(argv) or 'default'}: the config file failed to load "
               f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})")


def _as_a_study_job():
    """A job of `experiments.study.queue` sets itself up: its core (``NPRNN_JOB_CORE``) and, on
    Linux, SIGTERM when its driver dies (``NPRNN_JOB_DIE_WITH_PARENT``). Done here, after exec,
    so that the driver starts it without Python code between fork and exec."""
    core = os.environ.get("NPRNN_JOB_CORE", "")
    if core.isdigit() and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {int(core)})
        except OSError:
            pass
    if os.environ.get("NPRNN_JOB_DIE_WITH_PARENT") and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            if os.getppid() == 1:  # the driver died before this line
                os.kill(os.getpid(), signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def _quiet_after_ctrl_c():
    """Ctrl-C lands in the main thread, possibly while orbax's event-loop threads are mid-save:
    their "Event loop is closed" errors, raised as the interrupt unwinds, are noise after the
    user's own interrupt (the last checkpoint is intact: each is atomic and hash-checked). Once
    SIGINT has arrived, exceptions of other threads and unraisable ones are dropped silently;
    before it they print as usual."""
    import signal
    import threading

    interrupted = threading.Event()
    default_thread_hook, default_unraisable = threading.excepthook, sys.unraisablehook

    def on_sigint(signum, frame):
        interrupted.set()
        raise KeyboardInterrupt

    def thread_hook(args):
        if not interrupted.is_set():
            default_thread_hook(args)

    def unraisable_hook(unraisable):
        if not interrupted.is_set():
            default_unraisable(unraisable)

    signal.signal(signal.SIGINT, on_sigint)
    threading.excepthook, sys.unraisablehook = thread_hook, unraisable_hook


def run(task: str = None):
    """Defines the flags of a binary and runs it (call under ``if __name__ == "__main__"``):
    ``experiments.main`` (``task`` None: the task its config names) or a per-task alias."""
    _as_a_study_job()
    _quiet_after_ctrl_c()
    _define(task, sys.argv)
    app.run(run_main, flags_parser=parse_flags)


def main(task, argv) -> int:
    """A binary run inside this process (``task`` None: ``experiments.main``; else the alias of
    that task) (``argv[0]`` is the program's name): the same
    flags, checks, outputs and exit status as ``python -m experiments.<task>``, returned instead
    of ending the process. JAX has started, so the run uses the devices this process has (no
    host-device split). The tests call it; the command-line contract of a real process (Ctrl-C,
    kill -9, device counts) is tested on the binaries themselves."""
    global FLAGS, ARGV
    saved = FLAGS, ARGV, dict(TASK), _IN_PROCESS["on"]
    FLAGS, ARGV, _IN_PROCESS["on"] = flags.FlagValues(), list(argv), True
    try:
        _define(task, ARGV)
        run_main(parse_flags(ARGV))
        return 0
    except ToolExit as done:
        return done.code
    finally:
        FLAGS, ARGV, _IN_PROCESS["on"] = saved[0], saved[1], saved[3]
        TASK.update(saved[2])


def call_tool(module: str, argv) -> int:
    """A tool (``experiments.<module>``: dynamics, merge, reproduce; absl flags
    defined at its import, run by its ``main``) inside this process, as `main` runs a binary:
    the same flags, outputs and exit status, returned. Each call starts from the flags'
    defaults."""
    import importlib

    tool = importlib.import_module(f"experiments.{module}")
    entry = getattr(tool, "main_with_boundary", None) or tool.main
    saved = dict(_IN_PROCESS)
    _IN_PROCESS.update(on=True, module=module)
    FLAGS.unparse_flags()
    try:
        entry(parse_tool_flags(list(argv)))
        return 0
    except ToolExit as done:
        return done.code
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        FLAGS.unparse_flags()
        _IN_PROCESS.clear()
        _IN_PROCESS.update(saved)
