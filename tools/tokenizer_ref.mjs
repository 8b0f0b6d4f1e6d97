#!/usr/bin/env node
// Reference tokenizer for the conformance test and the benchmark: transformers.js (the @lenml/tokenizers
// fork, installed by tools/install-deps into a cache outside the tree) run on the same tokenizer.json.
//
//   tokenizer_ref.mjs encode --npm-dir DIR --model NAME [--tokenizer-dir DIR] --corpus FILE
//       prints {"model", "cases": [{"ids", "ids_plain", "decoded"}]} for the corpus's cases
//       (cases are separated by a line "~~~~"; bytes are decoded as UTF-8 with U+FFFD replacement).
//   tokenizer_ref.mjs bench --npm-dir DIR --model NAME [--tokenizer-dir DIR] --text FILE [--seconds S]
//       prints {"model", "bytes", "seconds", "mb_per_s"} for encoding FILE without special tokens.
// --tokenizer-dir defaults to the npm package's own models/ folder.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function fail(message, code) {
  process.stderr.write(`tokenizer_ref.mjs: ${message}\n`);
  process.exit(code);
}

const [command, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith("--") || i + 1 >= rest.length) fail(`bad argument '${rest[i]}'`, 2);
  opts[rest[i].slice(2)] = rest[i + 1];
}
if (!["encode", "bench"].includes(command)) fail("usage: tokenizer_ref.mjs encode|bench --npm-dir DIR --model NAME ...", 2);
for (const key of ["npm-dir", "model"]) if (!opts[key]) fail(`--${key} is required`, 2);

const modules = join(opts["npm-dir"], "node_modules");
let lib;
try {
  lib = await import(pathToFileURL(join(modules, "@lenml/tokenizers/dist/main.mjs")).href);
} catch (e) {
  fail(`cannot load @lenml/tokenizers from ${modules} (${e.message}); run tools/install-deps`, 1);
}
const dir = opts["tokenizer-dir"] ?? join(modules, `@lenml/tokenizer-${opts.model}`, "models");
const readJson = (name) => {
  try {
    return JSON.parse(readFileSync(join(dir, name), "utf8"));
  } catch (e) {
    fail(`${join(dir, name)}: ${e.message}`, 1);
  }
};
const tokenizer = lib.TokenizerLoader.fromPreTrained({
  tokenizerJSON: readJson("tokenizer.json"),
  tokenizerConfig: readJson("tokenizer_config.json"),
});

const utf8 = new TextDecoder("utf-8"); // not fatal: invalid bytes become U+FFFD, as Python's errors="replace"

if (command === "encode") {
  if (!opts.corpus) fail("--corpus is required", 2);
  const bytes = readFileSync(opts.corpus);
  const sep = Buffer.from("\n~~~~\n");
  const cases = [];
  let start = 0;
  for (;;) {
    const at = bytes.indexOf(sep, start);
    cases.push(utf8.decode(bytes.subarray(start, at < 0 ? bytes.length : at)));
    if (at < 0) break;
    start = at + sep.length;
  }
  const out = cases.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: true });
    const ids_plain = tokenizer.encode(text, { add_special_tokens: false });
    const decoded =
      ids_plain.length === 0
        ? "" // decode() refuses an empty list
        : tokenizer.decode(ids_plain, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    return { ids, ids_plain, decoded };
  });
  process.stdout.write(JSON.stringify({ model: opts.model, cases: out }) + "\n");
} else {
  if (!opts.text) fail("--text is required", 2);
  const bytes = readFileSync(opts.text);
  const text = utf8.decode(bytes);
  const lines = text.split(/(?<=\n)/);
  const minSeconds = Number(opts.seconds ?? "2");
  let runs = 0;
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    for (const line of lines) tokens += tokenizer.encode(line, { add_special_tokens: false }).length;
    runs++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (elapsed < minSeconds);
  const seconds = elapsed / runs;
  process.stdout.write(
    JSON.stringify({ model: opts.model, bytes: bytes.length, tokens: tokens / runs, seconds, mb_per_s: bytes.length / 1e6 / seconds }) + "\n",
  );
}
