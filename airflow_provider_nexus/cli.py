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
    from airflow_provider_nexus.config import load_config

    files = _config_files(args.paths)
    if not files:
        print("no pipeline files found", file=sys.stderr)
        return 2
    failed = 0
    for file in files:
        try:
            config = load_config(file)
        except NexusError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
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
    from airflow_provider_nexus.layers.common import RunContext
    from airflow_provider_nexus.templates import TemplateEngine

    config = load_config(args.config)
    dialect = get_dialect(args.dialect or config.warehouse.dialect or "duckdb")
    engine = TemplateEngine(dialect, config.resolved_template_dirs())
    run = RunContext(run_id="render")
    out: dict[str, str] = {}
    if args.layer == "source":
        from airflow_provider_nexus.layers.source import render_source_model

        sources = [config.source(args.source)] if args.source else config.sources
        for source in sources:
            for model in source.models():
                if args.model and model != args.model:
                    continue
                name = f"{source.name}.{model}"
                if model == "traits" and not engine.exists(f"sources/{source.name}/traits.sql"):
                    continue
                out[name] = render_source_model(engine, source, model, config.schemas, None, run.now)
    elif args.layer == "core":
        from airflow_provider_nexus.layers.core import CORE_MODELS, render_core_model

        for model in CORE_MODELS:
            if args.model and model != args.model:
                continue
            inputs = [
                {
                    "source": s.name,
                    "relation": dialect.table(config.schemas.source, f"{s.name}__{model}"),
                    "low": None,
                    "high": run.now,
                }
                for s in config.sources
                if model in s.models() and (not args.source or s.name == args.source)
            ]
            if inputs:
                out[model] = render_core_model(engine, model, inputs, config.entity_types, run)
    elif args.layer == "final":
        from airflow_provider_nexus.layers.final import render_final

        for table, sql in render_final(engine, config.entity_types, config.schemas, run).items():
            if not args.model or table == args.model:
                out[table] = sql
    else:
        print(
            f"the {args.layer} layer's SQL is generated at run time; see the task's compiled_sql field", file=sys.stderr
        )
        return 2
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
