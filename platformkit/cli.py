"""The platform's command line: ``python3 -m platformkit <command>``.

    version [REPO] | version --check VERSION     the release version of a checkout, or a check of one
    build-runtime PROJECT [--force | --check]   a project's packed runtime (venv.tar.gz)
    image PROJECT --repository R --version V --base-image B [--push]
    archive --version V [--root .] [--dist dist] [--image-repository R]
    deploy ARCHIVE --airflow-home DIR [--keep 5] [--keep-fetched 3]
    rollback --airflow-home DIR
    status --airflow-home DIR
    shell [--pass-env NAME] PROJECT               a shell in a project's runtime or container (stdin's commands unless a terminal)
    run [--stage S] [--set NAME=VALUE] PROJECT [ARGS...]    a project's stages here, without Airflow, skipping those up to date
    new-project NAME --kind KIND                 a project folder and its DAG from platformkit/templates/KIND

The modules raise PlatformError; only this one turns it into an exit status: one line on stderr,
``<tool>: error: <message>``, and status 1 (2 for bad arguments, argparse's). deploy, rollback,
status, version and build-runtime are standard library only: the host's python3 runs them from
the checkout (``python3 -m`` finds the package in the working folder), as the CI deploy job and
the runtime builder container do. archive needs the platform environment (detect-secrets).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platformkit import deploy, images, launch, runtime, scaffold, shell, version
from platformkit.errors import PlatformError


def at_least(minimum: int):
    def whole_number(value: str) -> int:
        if not value.isdigit() or int(value) < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least {minimum}")
        return int(value)
    return whole_number


def run_version(args) -> int:
    print(version.check_version(args.check) if args.check is not None else version.release_version(args.repo))
    return 0


def run_build_runtime(args) -> int:
    if args.check:
        return 0 if runtime.is_current(args.project) else 1
    runtime.build_runtime(args.project, force=args.force)
    return 0


def run_image(args) -> int:
    images.build(args.project, args.repository, args.version, args.base_image, args.push)
    return 0


def run_archive(args) -> int:
    # Imported here: archive needs detect-secrets, which the host's python3 (deploy) lacks.
    from platformkit import archive

    archive.create_release_archive(args.root, args.version, args.dist, args.image_repository)
    return 0


def run_deploy(args) -> int:
    if args.command == "deploy":
        deploy.deploy(args.archive, args.airflow_home, args.keep, args.keep_fetched)
    elif args.command == "rollback":
        deploy.rollback(args.airflow_home)
    else:
        deploy.status(args.airflow_home)
    return 0


def run_shell(args) -> int:
    shell.open_shell(args.root, args.project, pass_env=args.pass_env, network=args.network, image=args.image)
    return 0  # not reached: the shell replaced this process


def run_stages(args) -> int:
    launch.run(args.root, args.project, args.stage, args.args, values=launch.run_values(args.set),
               pass_env=args.pass_env, network=args.network, image=args.image)
    return 0


def run_new_project(args) -> int:
    scaffold.create(args.root, args.name, args.kind)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python3 -m platformkit", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)

    def command(name: str, module, run, tool: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(run=run, tool=tool)
        return sub

    sub = command("version", version, run_version, "version")
    sub.add_argument("repo", nargs="?", type=Path, default=Path("."), help="the checkout (default: .)")
    sub.add_argument("--check", metavar="VERSION", help="print VERSION if it is a valid version, else fail")

    sub = command("build-runtime", runtime, run_build_runtime, "runtime")
    sub.add_argument("project", type=Path, help="the project folder (holds pyproject.toml)")
    mode = sub.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    mode.add_argument("--check", action="store_true", help="only say whether the runtime is up to date (exit 1 if not)")

    sub = command("image", images, run_image, "image")
    sub.add_argument("project", type=Path, help="the project folder (holds a Dockerfile)")
    sub.add_argument("--repository", required=True, help="host[:port]/path the image is named under")
    sub.add_argument("--version", required=True, help="the image tag: the release version")
    sub.add_argument("--base-image", required=True, help="the image the runtime is put on")
    sub.add_argument("--push", action="store_true", help="push the image to its repository")

    sub = commands.add_parser("archive", help="write the release archive (platformkit/archive.py)")
    sub.set_defaults(run=run_archive, tool="archive")
    sub.add_argument("--version", required=True, help="the release version (see `version`)")
    sub.add_argument("--root", type=Path, default=Path("."), help="the checkout (default: .)")
    sub.add_argument("--dist", type=Path, default=Path("dist"), help="where to write (default: dist)")
    sub.add_argument("--image-repository", help="pin the images of container projects, <repository>/<project>:<version>")

    for name, module, run in (("shell", shell, run_shell), ("run", launch, run_stages)):
        sub = command(name, module, run, name)
        sub.add_argument("project", help="the project folder's name")
        sub.add_argument("--root", type=Path, default=Path("."), help="the checkout (default: .)")
        sub.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                         help="container projects: give the container this variable of this environment (by name)")
        sub.add_argument("--network", help="container projects: the container's network (default: conf/airflow.toml's)")
        sub.add_argument("--image", help="container projects: the image (default: the one `make image` builds)")
        if name == "run":
            sub.add_argument("--stage", help="run this stage only (default: every stage, dependencies first)")
            sub.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                             help="a run value of the stages' args (default: their local_values in project.toml)")
            sub.add_argument("args", nargs=argparse.REMAINDER,
                             help="the entry point's or command's arguments, instead of the contract's")

    sub = command("new-project", scaffold, run_new_project, "new-project")
    sub.add_argument("name", help="the project folder's name: lower-case words joined by '-' (e.g. word-count)")
    sub.add_argument("--kind", required=True, help=f"how it runs: {', '.join(scaffold.kinds())}")
    sub.add_argument("--root", type=Path, default=Path("."), help="the checkout (default: .)")

    for name in ("deploy", "rollback", "status"):
        sub = command(name, deploy, run_deploy, "deploy")
        sub.add_argument("--airflow-home", type=Path, required=True)
        if name == "deploy":
            sub.add_argument("archive", help="path or URL of platform-airflow-dags-<version>.tar.gz")
            sub.add_argument("--keep", type=at_least(1), default=deploy.KEEP,
                             help="releases that went live to keep (default %(default)s)")
            sub.add_argument("--keep-fetched", type=at_least(0), default=deploy.KEEP_FETCHED,
                             help="releases fetched for tasks to keep, most recently used first (default %(default)s)")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except PlatformError as error:
        # One line, even when it quotes a runtime's stderr.
        print(f"{args.tool}: error: {' | '.join(str(error).splitlines())}", file=sys.stderr)
    except OSError as error:  # the file system itself: a full disk, a permission
        print(f"{args.tool}: error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}",
              file=sys.stderr)
    return 1
