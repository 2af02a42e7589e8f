r"""Merges the workdirs of one study (jobs that ran different seeds) into one report.

    python -m experiments.addition --config.seed_offset=0 --config.num_seeds=4 --workdir=w/job0
    python -m experiments.addition --config.seed_offset=4 --config.num_seeds=4 --workdir=w/job1
    python -m experiments.merge --workdirs=w/job0,w/job1 --out=w/all

The workdirs must hold finished runs of the same settings except their seeds; the merged
summary.json, metrics.jsonl, results.md and figures go to --out.
"""

import pathlib
import sys

from absl import app, flags

flags.DEFINE_list("workdirs", None, "Comma list of finished workdirs of one study.")
flags.DEFINE_string("out", None, "Where the merged results go.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1 or not FLAGS.workdirs or not FLAGS.out:
        print("error: give --workdirs=a,b,... and --out=folder (and nothing else)", file=sys.stderr)
        sys.exit(2)
    from nprnn_jax import config as config_lib
    from nprnn_jax import merge
    from nprnn_jax import workdir as workdir_lib
    try:
        first = workdir_lib.read_config(pathlib.Path(FLAGS.workdirs[0]), config_lib.SCHEMA)  # errors name the file
        task = first["config"].get("task", "?")
        table = merge.merge_workdirs(FLAGS.workdirs, FLAGS.out, "test_accuracy", True,
                                     f"{task} (merged: {len(FLAGS.workdirs)} workdirs)", schema=config_lib.SCHEMA)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001  one line, no traceback (NPRNN_TRACEBACK=1 shows it)
        from experiments import common
        common.unexpected(error)
    print(table)


if __name__ == "__main__":
    from experiments.common import parse_tool_flags
    app.run(main, flags_parser=parse_tool_flags)
