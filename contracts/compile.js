#!/usr/bin/env node
// Compiles src/*.sol with solc-js into artifacts/<ContractName>.json.
//
//   node compile.js          (npm run build)  write artifacts/
//   node compile.js --check  (npm run check)  compare with the committed artifacts, exit 1 if stale
//
// Artifacts are deterministic: same sources + same solc => same bytes.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = __dirname;
const SRC_DIR = path.join(ROOT, "src");
const ARTIFACTS_DIR = path.join(ROOT, "artifacts");
const NODE_MODULES = path.join(ROOT, "node_modules");

// Contracts from outside src/ that are emitted as artifacts too (they must be imported by a
// src/ file so that they get compiled), e.g. {"@openzeppelin/contracts/...sol": ["Name"]}.
const EXTRA_CONTRACTS = {};

// Everything here except outputSelection is recorded in each artifact's compiler.settings.
// The default metadata hash (ipfs) is kept on purpose: it covers the keccak of every source
// file, so any source edit (even a comment) changes the bytecode and `--check` catches it.
// Sources are keyed by relative names (src/..., @openzeppelin/...), so the hash does not
// depend on where the checkout lives.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: {
    "*": {
      "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"],
    },
  },
};

function readSources() {
  const files = fs
    .readdirSync(SRC_DIR)
    .filter((f) => f.endsWith(".sol"))
    .sort();
  if (files.length === 0) throw new Error(`no .sol files in ${SRC_DIR}`);
  const sources = {};
  for (const f of files) {
    sources[`src/${f}`] = { content: fs.readFileSync(path.join(SRC_DIR, f), "utf8") };
  }
  return sources;
}

function findImports(importPath) {
  if (importPath.startsWith("@openzeppelin/")) {
    const full = path.join(NODE_MODULES, importPath);
    if (!full.startsWith(NODE_MODULES + path.sep)) return { error: `bad import path ${importPath}` };
    try {
      return { contents: fs.readFileSync(full, "utf8") };
    } catch (e) {
      return { error: `cannot read ${full}: ${e.message} (run \`npm ci\` in contracts/)` };
    }
  }
  return { error: `unresolved import ${importPath} (only @openzeppelin/... is resolved)` };
}

function compile() {
  const input = {
    language: "Solidity",
    sources: readSources(),
    settings: SETTINGS,
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));

  let failed = false;
  for (const msg of output.errors || []) {
    const text = msg.formattedMessage || msg.message;
    if (msg.severity === "error") {
      failed = true;
      console.error(text);
    } else if (msg.sourceLocation && !msg.sourceLocation.file.startsWith("src/")) {
      // Warnings inside dependencies (OpenZeppelin) are not ours to fix: one line each.
      console.warn(`${msg.type} in dependency ${msg.sourceLocation.file}: ${msg.message}`);
    } else {
      console.warn(text);
    }
  }
  if (failed) {
    console.error("compilation failed");
    process.exit(1);
  }

  const { outputSelection, ...recordedSettings } = SETTINGS;
  const version = solc.version();
  const artifacts = new Map(); // file name -> content
  for (const sourceName of Object.keys(output.contracts || {}).sort()) {
    const fromSrc = sourceName.startsWith("src/");
    const wanted = fromSrc ? null : EXTRA_CONTRACTS[sourceName];
    if (!fromSrc && !wanted) continue;
    for (const contractName of Object.keys(output.contracts[sourceName]).sort()) {
      if (wanted && !wanted.includes(contractName)) continue;
      const c = output.contracts[sourceName][contractName];
      const artifact = {
        contractName,
        sourceName,
        compiler: { version, settings: recordedSettings },
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
      const file = `${contractName}.json`;
      if (artifacts.has(file)) {
        console.error(`two contracts named ${contractName}: artifact names must be unique`);
        process.exit(1);
      }
      artifacts.set(file, JSON.stringify(artifact, null, 2) + "\n");
    }
  }
  for (const [sourceName, names] of Object.entries(EXTRA_CONTRACTS)) {
    for (const name of names) {
      if (!artifacts.has(`${name}.json`)) {
        console.error(`${name} from ${sourceName} was not compiled: import it from a src/ file`);
        process.exit(1);
      }
    }
  }
  return artifacts;
}

function existingArtifacts() {
  if (!fs.existsSync(ARTIFACTS_DIR)) return [];
  return fs.readdirSync(ARTIFACTS_DIR).filter((f) => f.endsWith(".json")).sort();
}

function main() {
  const check = process.argv.includes("--check");
  const started = Date.now();
  const artifacts = compile();

  if (check) {
    const stale = [];
    for (const [file, content] of artifacts) {
      const p = path.join(ARTIFACTS_DIR, file);
      if (!fs.existsSync(p)) stale.push(`artifacts/${file} is missing`);
      else if (fs.readFileSync(p, "utf8") !== content) stale.push(`artifacts/${file} is stale`);
    }
    for (const file of existingArtifacts()) {
      if (!artifacts.has(file)) stale.push(`artifacts/${file} has no contract in src/ (extra)`);
    }
    if (stale.length > 0) {
      for (const s of stale) console.error(s);
      console.error("run `npm run build` in contracts/");
      process.exit(1);
    }
    console.log(`artifacts up to date (${artifacts.size} contracts, solc ${solc.version()})`);
    return;
  }

  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const file of existingArtifacts()) {
    if (!artifacts.has(file)) fs.unlinkSync(path.join(ARTIFACTS_DIR, file));
  }
  for (const [file, content] of artifacts) {
    const p = path.join(ARTIFACTS_DIR, file);
    if (!fs.existsSync(p) || fs.readFileSync(p, "utf8") !== content) fs.writeFileSync(p, content);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`wrote ${artifacts.size} artifacts to artifacts/ in ${secs}s (solc ${solc.version()})`);
}

main();
