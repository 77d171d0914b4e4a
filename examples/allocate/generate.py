"""Generates the `allonet allocate` example: three pools over the 230 real Optimism RF4 projects.

Deterministic (no randomness): running it twice writes identical bytes. Python 3.11+, standard library only.
Run from anywhere; it reads ../op-rf4/ and writes next to itself. `make.sh` runs it, then allonet.

Reads (../op-rf4/, real data, MIT (c) 2024 GovXS, see ../op-rf4/SOURCE.md):
  rf4_impact_metrics_by_project.csv  project_name, application_id, is_oss and the 16 impact metrics
  rf4_results.csv                    official RF4 allocation per application id (OP)
  rf4_ballots_export.csv             108 badgeholder ballots (Payload: metric weights, os_only, os_multiplier)
  rf4_training.csv                   only cross-checked here (same projects); allonet trains on it (make.sh)

Writes:
  votes.json      QV-with-credits ballots derived from the real RF4 ballots (input of `allonet tally`):
                  each ballot scores every project as RF4 did (metric values, times os_multiplier for
                  open-source projects or zero for the others when os_only, as shares of each metric's
                  total over all projects, weighted by the ballot's percentages); the voter then spends
                  CREDITS voice credits on its TOP_N best-scoring projects, n_i = floor(k * score_i) votes
                  with k = sqrt(CREDITS / sum score_i^2), so that sum n_i^2 <= CREDITS.
  allocate.toml   the instance:
                  projects   every RF4 project; id = "rf4-" + first 8 hex digits of application_id,
                             name = project_name (the key the signal files use), address = SYNTHETIC:
                             sha256("allonet-example:" + application_id)[-20:], EIP-55 checksummed.
                  pools      optimism (OP), gitcoin (USDC, open-source projects only), octant (ETH, the top
                             half by trusted_monthly_active_users); budgets and prices are illustrative.
                  utility    log (a = 5000) by default; log with a = 150000 for the 10 largest RF4 awards.
                  baseline   optimism only: the official RF4 allocation scaled to the 100,000 OP budget
                             (largest remainders, whole OP, summing to exactly 100,000), projects with a
                             nonzero RF4 award.
                  signals    ai = recommend.json (`allonet recommend`), qv = tally.json (`allonet tally`),
                             both written by make.sh.

`python3 generate.py --check` (run by make.sh last) also checks that recommend.json and tally.json name
every project and nothing else.
"""
import csv
import hashlib
import json
import math
import sys
import tomllib
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "op-rf4"

CREDITS = 100          # voice credits per voter
TOP_N = 10             # projects each voter votes for
LOG_A = 5000.0         # default utility: ln(a + X), X in units of value
SAT_S = 150000.0       # log utility's a for the largest RF4 awards (returns diminish later)
TOP_SATURATING = 10    # how many of the largest RF4 awards get it
CAP = "250000"         # per-project cap across pools, units of value
WEIGHTS = {"ai": 0.6, "qv": 0.4}
SIGNALS = {"ai": "recommend.json", "qv": "tally.json"}
# Illustrative pools (budgets, prices, shares and minimums are made up for the example).
POOLS = [
    dict(id="optimism", token="OP", decimals=18, price=1.9, budget="100000", spend_all=True,
         max_share=0.05, min_grant="250", chain="optimism"),
    dict(id="gitcoin", token="USDC", decimals=6, price=1.0, budget="50000", spend_all=True,
         max_share=0.1, min_grant="100", chain="base"),
    dict(id="octant", token="ETH", decimals=18, price=3000.0, budget="20", spend_all=False,
         max_share=0.25, min_grant="0.05", chain="mainnet"),
]
BASELINE_POOL = "optimism"


# --- keccak-256 (Ethereum's, not NIST SHA3), for EIP-55 checksums only -----------------------------------
# After the Keccak team's CompactFIPS202.py (public domain / CC0).
def _rol(a, n):
    n %= 64
    return ((a << n) | (a >> (64 - n))) & 0xFFFFFFFFFFFFFFFF


def _keccak_f(lanes):
    r = 1
    for _ in range(24):
        c = [lanes[x][0] ^ lanes[x][1] ^ lanes[x][2] ^ lanes[x][3] ^ lanes[x][4] for x in range(5)]
        d = [c[(x + 4) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        lanes = [[lanes[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        x, y = 1, 0
        cur = lanes[x][y]
        for t in range(24):
            x, y = y, (2 * x + 3 * y) % 5
            cur, lanes[x][y] = lanes[x][y], _rol(cur, (t + 1) * (t + 2) // 2)
        for y in range(5):
            row = [lanes[x][y] for x in range(5)]
            for x in range(5):
                lanes[x][y] = row[x] ^ ((~row[(x + 1) % 5]) & row[(x + 2) % 5])
        for j in range(7):
            r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256
            if r & 2:
                lanes[0][0] ^= 1 << ((1 << j) - 1)
    return lanes


def keccak256(data: bytes) -> bytes:
    rate = 136
    msg = bytearray(data) + b"\x01"
    msg += b"\x00" * (-len(msg) % rate)
    msg[-1] |= 0x80
    lanes = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), rate):
        for i in range(rate // 8):
            lanes[i % 5][i // 5] ^= int.from_bytes(msg[off + 8 * i:off + 8 * i + 8], "little")
        lanes = _keccak_f(lanes)
    return b"".join(lanes[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def checksum(addr20: bytes) -> str:
    h = addr20.hex()
    k = keccak256(h.encode()).hex()
    return "0x" + "".join(ch.upper() if ch.isalpha() and int(k[i], 16) >= 8 else ch for i, ch in enumerate(h))


assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
assert checksum(bytes.fromhex("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")) == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def synthetic_address(application_id: str) -> str:
    return checksum(hashlib.sha256(("allonet-example:" + application_id).encode()).digest()[-20:])


# --- reading --------------------------------------------------------------------------------------------
def read_csv(name):
    with open(DATA / name, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def load():
    metrics = read_csv("rf4_impact_metrics_by_project.csv")
    results = {r["Project_id"]: Decimal(r["rf4_allocation"]) for r in read_csv("rf4_results.csv")}
    training = {r["application_id"]: r for r in read_csv("rf4_training.csv")}
    metric_cols = [c for c in metrics[0] if c not in ("project_name", "application_id", "is_oss")]
    projects = []
    for r in metrics:
        aid = r["application_id"]
        assert aid in results and aid in training, aid
        # Names: the metrics file and rf4_training.csv agree; rf4_results.csv mangles two emoji names.
        assert training[aid]["project_name"] == r["project_name"], aid
        assert Decimal(training[aid]["rf4_allocation"]) == results[aid], aid
        assert r["is_oss"] in ("true", "false"), r["is_oss"]
        projects.append(dict(
            aid=aid,
            id="rf4-" + aid[2:10],
            name=r["project_name"],
            oss=r["is_oss"] == "true",
            metrics={c: float(r[c]) if r[c] else 0.0 for c in metric_cols},
            rf4=results[aid],
            address=synthetic_address(aid),
        ))
    assert len(results) == len(training) == len(projects)
    for key in ("id", "name", "address", "aid"):
        assert len({p[key].lower() for p in projects}) == len(projects), f"{key} not unique"
    ballots = []
    for r in read_csv("rf4_ballots_export.csv"):
        p = json.loads(r["Payload"])
        w = {}
        for a in p["allocations"]:
            for m, v in a.items():
                assert m in metric_cols, m
                w[m] = w.get(m, 0.0) + float(v)
        ballots.append(dict(voter=r["Address"], weights=w, os_only=bool(p.get("os_only", False)),
                            os_multiplier=float(p.get("os_multiplier", 1.0))))
    assert len({b["voter"].lower() for b in ballots}) == len(ballots)
    return projects, ballots


# --- derived pieces -------------------------------------------------------------------------------------
def ballot_scores(ballot, projects):
    """RF4's per-ballot score: sum over metrics of weight/100 * (project's value / metric total)."""
    score = [0.0] * len(projects)
    for m, w in sorted(ballot["weights"].items()):
        if w <= 0:
            continue
        vals = [p["metrics"][m] * ballot["os_multiplier"] if p["oss"] else (0.0 if ballot["os_only"] else p["metrics"][m])
                for p in projects]
        total = sum(vals)
        if total > 0:
            for i, v in enumerate(vals):
                score[i] += w / 100.0 * v / total
    return score


def qv_ballot(ballot, projects):
    score = ballot_scores(ballot, projects)
    top = sorted((i for i in range(len(projects)) if score[i] > 0), key=lambda i: (-score[i], projects[i]["name"]))[:TOP_N]
    k = math.sqrt(CREDITS / sum(score[i] ** 2 for i in top))
    votes = {i: math.floor(k * score[i] + 1e-9) for i in top}
    while sum(n * n for n in votes.values()) > CREDITS:  # only if the epsilon above pushed one up
        j = min((i for i in votes if votes[i] > 0), key=lambda i: (score[i], projects[i]["name"]))
        votes[j] -= 1
    return {projects[i]["name"]: n for i, n in votes.items() if n > 0}


def largest_remainder(total: int, shares: dict) -> dict:
    s = sum(Fraction(v) for v in shares.values())
    exact = {k: Fraction(v) * total / s for k, v in shares.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:left]:
        out[k] += 1
    return out


def top_ids(projects, key, n):
    ranked = sorted(projects, key=lambda p: (-key(p), p["aid"]))
    assert key(ranked[n - 1]) != key(ranked[n]), "tie at the cut"
    return {p["id"] for p in ranked[:n]}


# --- writing --------------------------------------------------------------------------------------------
def q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def fmt(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return q(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_toml(projects, eligible, baseline, saturating, counts):
    pool_ids = [p["id"] for p in POOLS]
    L = [
        "# allonet allocate: three funding pools over the 230 real Optimism Retro Funding 4 projects.",
        "# Generated by generate.py (see SOURCE.md); do not edit by hand. Project names, open-source flags,",
        "# metrics, ballots and RF4 awards are real; payout addresses are SYNTHETIC (sha256 of the application",
        "# id), and every pool parameter (budget, price, shares, minimums, chains), utility and cap is",
        "# illustrative.",
        "",
        "rho = 0.0  # no pull toward the baseline (raise it to stay close to the RF4 outcome)",
        "",
        "[weights]  # the mix of signals: AI recommendation and quadratic vote",
    ]
    L += [f"{k} = {fmt(v)}" for k, v in WEIGHTS.items()]
    L += ["", "[signals]  # written by make.sh; entries match projects by name"]
    L += [f"{k} = {q(v)}  # " + ("`allonet recommend --json` (random forest trained on RF4 awards)" if k == "ai"
                                 else "`allonet tally --json` of votes.json (QV from the real RF4 ballots)")
          for k, v in SIGNALS.items()]
    L += ["", "[utility]  # default: diminishing returns, in units of value", 'kind = "log"', f"a = {fmt(LOG_A)}", ""]
    notes = {
        "optimism": "every project",
        "gitcoin": "open-source projects only",
        "octant": "top half by trusted_monthly_active_users",
    }
    for p in POOLS:
        L.append(f"[[pools]]  # eligible: {notes[p['id']]} ({counts[p['id']]})")
        L += [f"{k} = {fmt(v)}" for k, v in p.items()]
        L.append("")
    L += [
        f"# Projects, by name. Every project: cap = {q(CAP)} units of value. The {TOP_SATURATING} largest RF4 awards",
        f"# get ln(a + X) with a = {SAT_S:g}: large established projects already have funding, so a grant moves",
        "# them less than a small project. `eligible` is omitted where a project may receive from every pool;",
        f"# `baseline` is its RF4 award scaled to the {BASELINE_POOL} budget (whole OP).",
    ]
    for p in projects:
        L += ["", "[[projects]]", f"id = {q(p['id'])}", f"name = {q(p['name'])}", f"address = {q(p['address'])}"]
        if p["id"] in saturating:
            L.append(f'utility = {{ kind = "log", a = {fmt(SAT_S)} }}  # RF4 award {p["rf4"]} OP')
        L.append(f"cap = {q(CAP)}")
        el = [d for d in pool_ids if p["id"] in eligible[d]]
        if len(el) != len(pool_ids):
            L.append("eligible = [" + ", ".join(q(d) for d in el) + "]")
        if p["id"] in baseline:
            L.append(f"baseline = {{ {BASELINE_POOL} = {q(str(baseline[p['id']]))} }}")
    text = "\n".join(L) + "\n"
    (HERE / "allocate.toml").write_text(text, encoding="utf-8", newline="\n")
    return text


def validate(text, projects, baseline):
    doc = tomllib.loads(text)
    pools = {p["id"]: p for p in doc["pools"]}
    assert [p["id"] for p in doc["projects"]] == [p["id"] for p in projects]
    for pr in doc["projects"]:
        assert set(pr.get("eligible", pools)) <= set(pools), pr["id"]
        assert set(pr.get("baseline", {})) <= set(pools), pr["id"]
        assert pr["address"].startswith("0x") and len(pr["address"]) == 42
    assert sum(int(v) for v in baseline.values()) == int(pools[BASELINE_POOL]["budget"])
    for d, p in pools.items():
        budget = Decimal(p["budget"])
        per = budget * Decimal(str(p.get("max_share", 1.0)))
        elig = [pr for pr in doc["projects"] if d in pr.get("eligible", pools)]
        # most one project can take from d: max_share, and its cap (units of value) at d's price
        most = sum(min(per, Decimal(pr["cap"]) / Decimal(str(p["price"]))) for pr in elig)
        assert Decimal(p.get("min_grant", "0")) <= per
        if p.get("spend_all"):
            assert most >= budget, f"{d}: spend_all infeasible ({most} < {budget})"
        print(f"pool {d}: {len(elig)} eligible, room {most:.0f} {p['token']} for a budget of {budget}")
    for b in doc["projects"]:
        for d, v in b.get("baseline", {}).items():
            assert Decimal(v) <= Decimal(pools[d]["budget"]) * Decimal(str(pools[d].get("max_share", 1.0)))


def check_signals(projects):
    names = {p["name"] for p in projects}
    rec = json.loads((HERE / "recommend.json").read_text(encoding="utf-8"))
    ai = {r["proposal"]: r["amount"] for r in rec["recommendations"]}
    tally = json.loads((HERE / "tally.json").read_text(encoding="utf-8"))
    qv = {l["choice"]: l["score"] for l in tally["result"]["lines"]}
    for s, got in (("ai", ai), ("qv", qv)):
        assert set(got) == names, f"{s}: {sorted(set(got) ^ names)[:5]}"
        assert all(v >= 0 for v in got.values()), s
        print(f"signal {s}: {len(got)} entries, {sum(1 for v in got.values() if v > 0)} positive, sum {sum(got.values()):.6g}")


def main():
    projects, ballots = load()
    projects.sort(key=lambda p: (p["name"].casefold(), p["id"]))
    if "--check" in sys.argv[1:]:
        check_signals(projects)
        return
    all_ids = {p["id"] for p in projects}
    half = top_ids(projects, lambda p: p["metrics"]["trusted_monthly_active_users"], len(projects) // 2)
    eligible = {"optimism": all_ids, "gitcoin": {p["id"] for p in projects if p["oss"]}, "octant": half}
    counts = {d: len(v) for d, v in eligible.items()}
    saturating = top_ids(projects, lambda p: p["rf4"], TOP_SATURATING)
    budget = int(next(p["budget"] for p in POOLS if p["id"] == BASELINE_POOL))
    baseline = largest_remainder(budget, {p["id"]: p["rf4"] for p in projects if p["rf4"] > 0})

    election = {
        "choices": [p["name"] for p in projects],
        "credits": CREDITS,
        "ballots": [{"voter": b["voter"], "votes": qv_ballot(b, projects)} for b in ballots],
    }
    with open(HERE / "votes.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(election, f, ensure_ascii=False, indent=1)
        f.write("\n")
    text = write_toml(projects, eligible, baseline, saturating, counts)
    validate(text, projects, baseline)
    spent = [sum(n * n for n in b["votes"].values()) for b in election["ballots"]]
    voted = {c for b in election["ballots"] for c in b["votes"]}
    print(f"{len(projects)} projects; eligible {counts}; {len(baseline)} baselines; {len(saturating)} with a = {SAT_S:g}")
    print(f"votes.json: {len(ballots)} ballots, credits spent {min(spent)}..{max(spent)} (mean {sum(spent) / len(spent):.1f}),"
          f" {len(voted)} projects get votes")


if __name__ == "__main__":
    main()
