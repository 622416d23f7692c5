"""The results as a Markdown table: one row per measurement, its target, and whether it is met."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str, str]
PASS, FAIL, NONE = "yes", "**no**", ""


def _fmt(value: Any, digits: int = 0) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def _numeric(values: dict[str, Any]) -> list[tuple[str, Any]]:
    """Items in numeric key order ("1", "50", "200"; "1s", "10s", "60s"): results.json sorts keys as text."""
    return sorted(values.items(), key=lambda item: float(item[0].rstrip("s")))


def _writes(r: dict[str, Any]) -> Row:
    w = r["writes_per_generation"]
    order = [k for k in ("instant", "short", "long_quiet", "long") if k in w]
    label = {"instant": "instant", "short": "3 s", "long_quiet": "long, quiet", "long": "long, tqdm"}
    seconds = w.get("long", {}).get("prediction_seconds", 60)
    text = " · ".join(f"{label[k]} **{w[k]['total']}**" for k in order)
    events = " · ".join(str(w[k]["events"]) for k in order)
    lifecycle = [w[k]["total"] for k in order if k != "long"]
    return (
        f"API-server writes per generation beyond the create (long = {seconds:g} s); events posted",
        f"{text}; events {events}",
        "≤ 3 (progress writes extra by design)",
        _verdict(max(lifecycle) <= 3),
    )


def _long_requests(q: dict[str, Any], how: str, extra: str = "") -> Row:
    """The Replicate requests of the long prediction: the polls it cost, against the target."""
    return (
        f"Replicate requests for a {q['prediction_seconds']:g}-s prediction{how}: create · polls · cancels",
        f"{q['create']} · **{q['get']}** · {q['cancel']}{extra}",
        "polls ≤ 15",
        _verdict(q["get"] <= 15),
    )


def _requests(r: dict[str, Any]) -> Row:
    return _long_requests(r["replicate_requests_per_generation"]["long"], "")


def _rate(r: dict[str, Any]) -> Row:
    d = r["replicate_rate"]
    ratios = " · ".join(f"{w} {v:.2f}" for w, v in _numeric(d["peak_ratio"]))
    creates = " · ".join(f"{w} {v:.2f}" for w, v in _numeric(d["peak_create_ratio"]))
    verdict = _verdict(max(*d["peak_ratio"].values(), *d["peak_create_ratio"].values()) <= 1.0)
    return (
        f"Peak Replicate request rate ÷ limit ({d['configured_rps']:g}/s; creates {d['configured_create_rps']:g}/s), "
        f"{d['predictions']} slow predictions, sliding window",
        f"all {ratios}; creates {creates}; 429s: {d['throttled_429']}",
        "≤ 1",
        verdict,
    )


def _makespan_cell(name: str, m: dict[str, Any]) -> str:
    hooks = m.get("webhooks")
    told = f", webhooks {hooks['makespan_s']:.1f} s" if hooks else ""
    return f"{name}: **{m['makespan_s']:.1f} s** (ideal {m['ideal_s']:.1f}, x{m['ratio_to_ideal']:.2f}{told})"


def _makespan(r: dict[str, Any]) -> Row:
    m = r["makespan"]
    readings = [(label, m[key]) for key, label in (("burst_10", "burst 10"), ("burst_600", "burst 600")) if key in m]
    runs = [run for _, run in readings] + [run["webhooks"] for _, run in readings if "webhooks" in run]
    creates = sum(run["creates"] for run in runs)
    throttled = sum(run["creates_429"] for run in runs)
    count = readings[0][1]["generations"]
    floor = f"; no limits {m['unlimited']['makespan_s']:.1f} s" if "unlimited" in m else ""
    met = all(
        run["ratio_to_ideal"] <= 1.3
        and run["failed"] == 0
        and run["duplicate_predictions"] == 0
        and run["creates_429"] <= 0.05 * run["creates"]
        and run["max_requests_in_flight_per_prediction"] <= 1
        for _, run in readings
    )
    return (
        f"Makespan, {count} x {readings[0][1]['model_seconds']:g} s submitted at once, Replicate's documented "
        "limits (bursts of 10 or 600 creates), production defaults (polling)",
        " · ".join(_makespan_cell(label, run) for label, run in readings)
        + f"{floor}; creates 429: {throttled} of {creates}; others 429: {sum(run['others_429'] for run in runs)}; "
        f"failed {sum(run['failed'] for run in runs)}; second predictions "
        f"{sum(run['duplicate_predictions'] for run in runs)}",
        "≤ 1.3 x ideal; 429 ≤ 5 % of creates; none failed or paid twice",
        _verdict(met),
    )


def _sustained_cell(s: dict[str, Any]) -> str:
    rate, ratio = s["steady_creates_per_minute"], s["steady_ratio_to_documented"]
    steady = f"**{rate:g}**/min (x{ratio:.3f})" if rate is not None else "too short for a steady rate"
    return (
        f"{steady} · "
        f"{s['busiest_60s_creates']}; 429s: creates {s['creates_429']} of {s['creates']}, others {s['others_429']}; "
        f"failed {s['failed']}"
    )


def _sustained(r: dict[str, Any]) -> Row:
    s = r["sustained"]
    every = s["slots_for_all"]
    return (
        f"Sustained overload: {s['generations']} at once (bursts of 10): creates a minute as Replicate counted them "
        f"(steady · busiest 60 s), production defaults; with a slot for every generation",
        f"{_sustained_cell(s)} (a slot held {s['slot_held_s']['p50']:g} s p50); {_sustained_cell(every)}",
        "600/min ± 5 %; none failed",
        _verdict(abs((s["steady_ratio_to_documented"] or 0) - 1) <= 0.05 and s["failed"] == every["failed"] == 0),
    )


def _percentiles(by_concurrency: dict[str, Any]) -> str:
    return " · ".join(f"{c}: {_fmt(v['p50'])}/{_fmt(v['p95'])}/{_fmt(v['p99'])}" for c, v in _numeric(by_concurrency))


def _latency(key: str, title: str, target: bool, single_p50: float | None = None) -> Callable[[dict[str, Any]], Row]:
    """A row of percentiles by concurrency; the target is on the highest concurrency (and, with ``single_p50``,
    on the p50 one at a time)."""

    def row(r: dict[str, Any]) -> Row:
        o = r[key]
        if not target:
            return (title, _percentiles(o), "", NONE)
        top = o[max(o, key=int)]
        met = top["p50"] <= 50 and top["p99"] <= 500
        wanted = "p50 ≤ 50, p99 ≤ 500 at 200"
        if single_p50 is not None and "1" in o:
            met = met and o["1"]["p50"] <= single_p50
            wanted = f"p50 ≤ {single_p50:g} at 1; {wanted}"
        return (title, _percentiles(o), wanted, _verdict(met))

    return row


def _held_title(r: dict[str, Any], key: str, how: str) -> str:
    c = r[key]
    low, high = c["held_prediction_seconds"]
    first, last = c["sequential_prediction_seconds"]
    return (
        f"Overhead, {how}, ms p50/p95/p99: 1 at a time ({first:g}-{last:g} s predictions); "
        f"{' and '.join(sorted(c['held'], key=int))} held in flight ({low:g}-{high:g} s predictions)"
    )


def _overhead(r: dict[str, Any]) -> Row:
    row = _latency("overhead_ms", "", True, single_p50=30)(r)
    return (_held_title(r, "overhead_config", "completion webhooks"), *row[1:])


def _overhead_polling(r: dict[str, Any]) -> Row:
    row = _latency("overhead_ms_polling", "", True)(r)
    return (_held_title(r, "overhead_config_polling", "polling alone (no webhook receiver)"), *row[1:])


def _bursts(r: dict[str, Any]) -> Row:
    return (
        "Overhead of a burst (N created in the same instant; drains at the throughput rate), ms p50/p95/p99: "
        "webhooks; polling",
        f"{_percentiles(r['overhead_ms_burst'])}; {_percentiles(r['overhead_ms_burst_polling'])}",
        "",
        NONE,
    )


def _throughput(r: dict[str, Any]) -> Row:
    t = r["throughput"]
    runs = " · ".join(f"{x:g}" for x in t["runs_per_s"])
    return (
        f"Throughput, {t['generations']} instant generations (sustained, 10th-90th pct; median of "
        f"{len(t['runs_per_s'])} drains)",
        f"**{r['throughput_per_s']:.1f}**/s (drains {runs}; operator {t['operator_cpu_ms_per_generation']} ms CPU "
        f"per generation; machine {t['cpu_cores_machine']:.2f} cores busy, "
        f"{t['cpu_cores_outside_benchmark']:.2f} outside the benchmark)",
        "≥ 100/s; ≤ 7 ms CPU per generation",
        _verdict(r["throughput_per_s"] >= 100 and (t["operator_cpu_ms_per_generation"] or float("inf")) <= 7),
    )


def _inflight(r: dict[str, Any]) -> Row:
    d = r["inflight"]
    rss, cpu = r["rss_mb_inflight_2000"], r["cpu_cores_inflight_2000"]
    return (
        f"Operator RSS · CPU with {d['predictions']} predictions in flight",
        f"**{rss:.0f} MB** · **{cpu:.2f} cores** (ramp peak {d['ramp_peak_rss_mb']:.0f} MB)",
        "≤ 300 MB, < 0.3 core",
        _verdict(rss <= 300 and cpu < 0.3),
    )


def _max_objects(r: dict[str, Any]) -> Row:
    rss, d = r["rss_mb_max_objects"], r["max_objects"]
    limits = d["chart_limits_mb"]
    return (
        f"RSS among {d['objects']} maximum-size generations (64 KiB input) while the gallery, the listing and a "
        "POST run: gateway · operator",
        f"**{rss['gateway']:.0f} MB** · **{rss['operator']:.0f} MB**",
        f"≤ chart limits ({limits['gateway']:.0f} · {limits['operator']:.0f} MiB)",
        _verdict(rss["gateway"] <= limits["gateway"] and rss["operator"] <= limits["operator"]),
    )


def _aggregated(r: dict[str, Any]) -> Row:
    d = r["aggregated_overhead_ms"]
    s, a, paired = d["standalone"], d["aggregated"], d["added_paired"]
    return (
        f"POST generate, {d['requests']} each, ms p50/p99: standalone · aggregated (through kube-apiserver) · "
        "the hop (differences of consecutive pairs)",
        f"{s['p50']:.1f}/{s['p99']:.1f} · {a['p50']:.1f}/{a['p99']:.1f} · "
        f"**{paired['p50']:+.1f}/{paired['p99']:+.1f}**",
        "",
        NONE,
    )


def _large(r: dict[str, Any]) -> Row:
    d = r["large_transfer"]
    size = d["bytes"] / 1024**2
    label = f"{size / 1024:g} GiB" if size >= 1024 else f"{size:g} MiB"
    return (
        f"{label} output: operator RSS growth · speed ÷ boto3 upload_file",
        f"**{d['rss_growth_mb']:.0f} MB** · **{d['speed_ratio']:.2f}** "
        f"({d['operator_mb_s']:.0f} vs {d['baseline_mb_s']:.0f} MB/s; source {d['source_mb_s']:.0f} MB/s)",
        "≤ 64 MB, ≥ 0.7",
        _verdict(d["rss_growth_mb"] <= 64 and d["speed_ratio"] >= 0.7),
    )


def _floor(r: dict[str, Any]) -> Row:
    f = r["floor"]
    p = f["patch_ms"]
    ratios = r.get("floor_ratios", {})
    parts = []
    if "overhead_ms_instant_p50_at_1_in_raw_patches" in ratios:
        parts.append(f"instant overhead at 1 = {ratios['overhead_ms_instant_p50_at_1_in_raw_patches']:g} patches")
    if "throughput_writes_share_of_raw_patch_rate" in ratios:
        parts.append(f"throughput writes = {ratios['throughput_writes_share_of_raw_patch_rate']:.0%} of the raw rate")
    return (
        f"Floor: {f['patches']} raw status patches (kubernetes client): ms p50/p95/p99; patches/s 1 · "
        f"{f['parallel_threads']} threads",
        f"{p['p50']:.1f}/{p['p95']:.1f}/{p['p99']:.1f}; {f['sequential_patches_per_s']:.0f} · "
        f"{f['parallel_patches_per_s']:.0f}" + (f" ({'; '.join(parts)})" if parts else ""),
        "",
        NONE,
    )


def _webhook_requests(r: dict[str, Any]) -> Row:
    deliveries = f" ({r['webhooks']['deliveries']} deliveries in the run)"
    return _long_requests(r["webhooks"]["long_prediction"], " with webhooks", deliveries)


ROWS: tuple[Callable[[dict[str, Any]], Row], ...] = (
    _writes,
    _requests,
    _rate,
    _makespan,
    _sustained,
    _webhook_requests,
    _overhead,
    _overhead_polling,
    _bursts,
    _latency(
        "overhead_ms_instant",
        "Overhead, instant predictions (nothing to wait for), 1 at a time and bursts, ms p50/p95/p99",
        False,
    ),
    _throughput,
    _inflight,
    _max_objects,
    _aggregated,
    _large,
    _floor,
)


def rows(results: dict[str, Any]) -> list[Row]:
    """One row per measurement present in ``results``."""
    found: list[Row] = []
    for make in ROWS:
        try:
            found.append(make(results))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def markdown(results: dict[str, Any]) -> str:
    """The table, with the scale and machine in a line above it."""
    m = results.get("machine", {})
    head = (
        f"Scale `{results.get('scale', '?')}`, {m.get('cpus_usable', '?')} cores ({m.get('cpu_model', '?')}), "
        f"{m.get('memory_gib', '?')} GiB, kube-apiserver {m.get('kube_apiserver', '?')}, {results.get('finished', '')}"
    )
    lines = [head, "", "| measurement | result | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)]
    return "\n".join(lines)
