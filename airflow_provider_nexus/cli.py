"""`nexus`: validate pipeline files, print their JSON schema, render SQL, run the demo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airflow_provider_nexus.errors import NexusError


def _config_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
        else:
            files.append(path)
    return files


def cmd_validate(args: argparse.Namespace) -> int:
    """Check each file as the DAG factory and the tasks would: the YAML, the dag_id's uniqueness
    across the files given, and that every template the pipeline needs is found and renders."""
    from airflow_provider_nexus.config import claim_dag_id, load_config
    from airflow_provider_nexus.dialects import get_dialect
    from airflow_provider_nexus.render import RENDERED_LAYERS, render_layer

    files = _config_files(args.paths)
    if not files:
        print("no pipeline files found", file=sys.stderr)
        return 2
    failed = 0
    dag_files: dict[str, Path] = {}
    for file in files:
        try:
            config = load_config(file)
            claim_dag_id(dag_files, config, file)
            missing = [d for d in config.resolved_template_dirs() if not d.is_dir()]
            if missing:
                raise NexusError(f"{file}: template_dirs: {', '.join(map(str, missing))} not found")
            dialect = get_dialect(config.warehouse.dialect or "duckdb")
            for layer in RENDERED_LAYERS:
                render_layer(config, dialect, layer)
        except NexusError as exc:
            failed += 1
            print(str(exc) if str(exc).startswith(str(file)) else f"{file}: {exc}", file=sys.stderr)
            continue
        print(
            f"{file}: ok (dag {config.dag_id}, {len(config.sources)} sources, {len(config.entity_types)} entity types)"
        )
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from airflow_provider_nexus.config import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from airflow_provider_nexus.config import load_config
    from airflow_provider_nexus.dialects import get_dialect
    from airflow_provider_nexus.render import RENDERED_LAYERS, render_layer

    config = load_config(args.config)
    dialect = get_dialect(args.dialect or config.warehouse.dialect or "duckdb")
    if args.layer not in RENDERED_LAYERS:
        print(
            f"the {args.layer} layer's SQL is generated at run time; see the task's compiled_sql field", file=sys.stderr
        )
        return 2
    out = render_layer(config, dialect, args.layer, source=args.source, model=args.model)
    if not out:
        print("nothing matched", file=sys.stderr)
        return 1
    for name, sql in out.items():
        print(f"-- {args.layer}: {name} ({dialect.name})\n{sql.strip()}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from airflow_provider_nexus.demo.run import run_demo

    return run_demo(
        dags_dir=Path(args.dags_dir),
        workdir=Path(args.workdir),
        persons=args.persons,
        batches=args.batches,
        seed=args.seed,
        postgres_uri=args.postgres,
        connection=args.connection,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexus", description="Nexus: identity-resolved customer model on Airflow")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", aliases=["lint"], help="validate pipeline YAML files (exit 1 on any error)")
    p.add_argument("paths", nargs="+", help="files or folders of *.yml")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the JSON schema of a pipeline file (for editors)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("render", help="print the SQL a layer would run")
    p.add_argument("--config", required=True)
    p.add_argument("--layer", required=True, choices=["source", "core", "resolution", "final"])
    p.add_argument("--source")
    p.add_argument("--model")
    p.add_argument("--dialect")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("demo", help="generate demo data and run the demo DAG through Airflow on DuckDB")
    p.add_argument("--dags-dir", default="dags")
    p.add_argument("--workdir", default=".nexus/demo")
    p.add_argument("--persons", type=int, default=2000)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--postgres", metavar="URI", help="run on this PostgreSQL database instead of DuckDB")
    where.add_argument(
        "--connection",
        metavar="URI_OR_JSON",
        help="run on the warehouse of this Airflow connection (as an AIRFLOW_CONN_* value), e.g. Snowflake",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NexusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
