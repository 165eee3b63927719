"""Exact connected components in set-based SQL, driven by a host loop.

Algorithm: parent pointers with min-hooking and pointer jumping (shortcutting). Every node
starts as its own parent; each round is one ``CREATE TABLE AS`` statement that computes

    H(x)  = min( P(x),
                 min P(u) over neighbours u of x,                       -- label propagation
                 min P(u) over edges (u, v) with P(v) = x )             -- hook a root
    P'(x) = H(H(x))                                                     -- shortcut

and the loop stops when no parent changed. Labels only decrease and stay inside the component,
so the loop terminates; at the fixpoint every edge has P(u) = P(v) and P(P(x)) = P(x), so every
component carries one label, which is its smallest node id (the smallest node is always a root).
Round 1 needs no parent table: every node is its own parent, so H(x) is the smallest of x and
its neighbours, one aggregate over the edges. Only edges whose ends still carry different
labels take part in a later round, so late rounds are cheap. Nodes without any edge are their
own component and never enter the loop; each round's table carries a changed flag, so counting
changes needs no join. From round 2 on it also flags
*settled* nodes: their parent p is a root that no differently-labelled edge touches, so p's
nodes are one whole component already pointing at its smallest node (a fixpoint). When at least
a quarter of the live nodes are settled they are set aside with their edges, and later rounds
(which mostly work on chains and giant components) only touch the rest. No recursive CTE, no
depth bound: a round cap fails loudly instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airflow_provider_nexus.errors import ResolutionCapError
from airflow_provider_nexus.resolution._sql import drop_table, replace_table, run_statement
from airflow_provider_nexus.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class ComponentsResult:
    rounds: int = 0
    #: nodes whose parent changed, per round (the last round is 0 when converged)
    rows_per_round: list[int] = field(default_factory=list)
    seconds_per_round: list[float] = field(default_factory=list)


def connected_components(
    wh: Warehouse,
    *,
    nodes_sql: str,
    edges: str,
    labels: str,
    scratch: Callable[[str], str],
    max_rounds: int = 100,
    what: str = "identity resolution",
    temp: bool = False,
) -> ComponentsResult:
    """Label every node with the smallest node id of its connected component.

    nodes_sql: a SELECT with an integer column ``node`` (distinct); any other columns it has are
        carried into `labels` as they are.
    edges: a relation with integer columns ``a``, ``b`` (undirected; each pair once is enough);
        both ends of every edge must be nodes of `nodes_sql` (round 1 reads the edges alone).
    labels: the table to create, with the columns of `nodes_sql` and ``label``.
    scratch: turns a short name into a qualified scratch-table name.
    temp: create the round tables and `labels` as temporary tables (unqualified scratch names).
    Raises ResolutionCapError if labels still change after ``max_rounds`` rounds.
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    cur, nxt = scratch("cc_p0"), scratch("cc_p1")
    result = ComponentsResult()
    changed = -1
    live_edges = edges
    edge_names = [scratch("cc_e0"), scratch("cc_e1")]
    done = scratch("cc_done")
    pruned = False
    for round_no in range(1, max_rounds + 1):
        started = time.perf_counter()
        if round_no == 1:
            # Every node is still its own parent, so H(x) is the smallest of x and its neighbours:
            # one aggregate over the edges, no parent table to join (nodes without an edge never
            # enter the loop). Nothing is settled yet.
            replace_table(
                wh,
                nxt,
                f"""WITH h AS (
    SELECT node, LEAST(node, min(p)) AS parent
    FROM (SELECT a AS node, b AS p FROM {edges} UNION ALL SELECT b, a FROM {edges}) x
    GROUP BY node
)
SELECT h.node, g.parent, CASE WHEN g.parent <> h.node THEN 1 ELSE 0 END AS changed, 0 AS settled
FROM h JOIN h g ON g.node = h.parent""",
                temp=temp,
            )
        else:
            # `old` is the node's parent before the round (k = 0), so the change count needs no
            # join. `settled`: the node's parent p is a root (P(p) = p) that no edge with
            # differently labelled ends touches. Then every edge at p's nodes stays inside them,
            # so they are one whole component, all pointing at its smallest node: a fixpoint,
            # never changed again. The active roots are an anti-join (a correlated NOT EXISTS in
            # the select list is re-run per row on PostgreSQL; plain UNION is not valid on BigQuery).
            replace_table(
                wh,
                nxt,
                f"""WITH ep AS (
    SELECT e.a, e.b, pa.parent AS pa, pb.parent AS pb
    FROM {live_edges} e
    JOIN {cur} pa ON pa.node = e.a
    JOIN {cur} pb ON pb.node = e.b
    WHERE pa.parent <> pb.parent
), cand AS (
    SELECT node, parent AS p, 0 AS k FROM {cur}
    UNION ALL SELECT a, pb, 1 FROM ep WHERE pb < pa
    UNION ALL SELECT b, pa, 1 FROM ep WHERE pa < pb
    UNION ALL SELECT pa, pb, 1 FROM ep WHERE pb < pa
    UNION ALL SELECT pb, pa, 1 FROM ep WHERE pa < pb
), h AS (
    SELECT node, min(p) AS parent, min(CASE WHEN k = 0 THEN p END) AS old FROM cand GROUP BY node
), act AS (SELECT DISTINCT x.p FROM (SELECT pa AS p FROM ep UNION ALL SELECT pb FROM ep) x)
SELECT h.node, g.parent, CASE WHEN g.parent <> h.old THEN 1 ELSE 0 END AS changed,
    CASE WHEN h.old = g.node AND g.old = g.node AND x.p IS NULL THEN 1 ELSE 0 END AS settled
FROM h JOIN h g ON g.node = h.parent LEFT JOIN act x ON x.p = g.node""",
                temp=temp,
            )
        row = wh.fetchone(f"SELECT sum(changed), sum(settled), count(*) FROM {nxt}") or (0, 0, 0)
        changed, n_settled, n_live = (int(x or 0) for x in row)
        if round_no > 1:
            drop_table(wh, cur, temp=temp)
        if changed and n_settled and n_settled * 4 >= n_live:
            # set the finished components aside; the next rounds run on the rest only
            if pruned:
                run_statement(wh, f"INSERT INTO {done} (node, parent) SELECT node, parent FROM {nxt} WHERE settled = 1")
            else:
                replace_table(wh, done, f"SELECT node, parent FROM {nxt} WHERE settled = 1", temp=temp)
                pruned = True
            replace_table(wh, cur, f"SELECT node, parent FROM {nxt} WHERE settled = 0", temp=temp)
            drop_table(wh, nxt, temp=temp)
            target = edge_names[0] if live_edges != edge_names[0] else edge_names[1]
            replace_table(
                wh,
                target,
                f"SELECT e.a, e.b FROM {live_edges} e WHERE e.a IN (SELECT node FROM {cur})",
                temp=temp,
            )
            if live_edges != edges:
                drop_table(wh, live_edges, temp=temp)
            live_edges = target
        else:
            cur, nxt = nxt, cur
        result.rounds = round_no
        result.rows_per_round.append(changed)
        result.seconds_per_round.append(round(time.perf_counter() - started, 4))
        log.debug("%s: round %d, %d nodes changed", what, round_no, changed)
        if changed == 0:
            break
    else:
        # the largest group of nodes still sharing a parent: where the component to look at is
        largest = wh.fetchone(
            f"SELECT parent, count(*) AS n FROM {cur} GROUP BY parent ORDER BY count(*) DESC, parent LIMIT 1"
        )
        error = ResolutionCapError(
            f"{what}: connected components did not converge within max_rounds={max_rounds} "
            f"rounds; {changed} nodes were still changing in the last round"
            + (f", the largest group of them ({largest[1]} nodes) under node {largest[0]}" if largest else "")
            + ". Raise max_rounds (the number of rounds grows roughly with the log of the longest chain) or "
            "check for an unexpected giant component (a hub that should be blocked or limited)."
        )
        error.node = int(largest[0]) if largest else None
        raise error
    parents = f"(SELECT node, parent FROM {cur} UNION ALL SELECT node, parent FROM {done})" if pruned else cur
    replace_table(
        wh,
        labels,
        f"SELECT n.*, COALESCE(c.parent, n.node) AS label FROM ({nodes_sql}) n LEFT JOIN {parents} c ON c.node = n.node",
        temp=temp,
    )
    drop_table(wh, cur, temp=temp)
    if pruned:
        drop_table(wh, done, temp=temp)
    if live_edges != edges:
        drop_table(wh, live_edges, temp=temp)
    return result
