"""Generates the demo round bundled with allonet (synthetic; seeded, so re-running gives the same files).

contributions.csv: donor,project,amount (USDC) -- 200 honest donors with heavy-tailed gifts to 10 projects,
a sybil farm of 30 fresh addresses giving 1 USDC each to one project, and a coordinated ring of 12 donors
who all fund the same two projects.
passport.csv: donor,score -- honest donors score 15..45, the farm scores 0..8.
"""
import csv, random

rng = random.Random(42)
projects = ["ethers-rs", "libp2p-gossip", "zk-circuits-lib", "client-diversity", "eth-docs",
            "solidity-lint", "public-rpc", "grants-research", "ring-a", "ring-b", "airdrop-farm"]
honest = ["ethers-rs", "libp2p-gossip", "zk-circuits-lib", "client-diversity", "eth-docs",
          "solidity-lint", "public-rpc", "grants-research"]
popularity = [30, 22, 14, 12, 9, 6, 4, 3]

def addr():
    return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))

rows, scores = [], []
for _ in range(200):
    d = addr()
    scores.append((d, round(rng.uniform(15, 45), 2)))
    for p in rng.sample(honest, k=rng.choice([1, 1, 2, 2, 3, 4])):
        if rng.random() < popularity[honest.index(p)] / 30 + 0.15:
            rows.append((d, p, round(rng.lognormvariate(1.5, 1.1), 2) + 0.5))
for _ in range(30):
    d = addr()
    scores.append((d, round(rng.uniform(0, 8), 2)))
    rows.append((d, "airdrop-farm", 1.0))
for _ in range(12):
    d = addr()
    scores.append((d, round(rng.uniform(20, 30), 2)))
    rows.append((d, "ring-a", 5.0))
    rows.append((d, "ring-b", 5.0))
rng.shuffle(rows)
with open("contributions.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["donor", "project", "amount"])
    w.writerows(rows)
with open("passport.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["donor", "score"])
    w.writerows(sorted(scores))
print(len(rows), "gifts,", len(scores), "donors")
