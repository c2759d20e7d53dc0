#!/usr/bin/env node
// Renders LaTeX strings with KaTeX, for tests/test_katex.py (via tests/katex.py).
//
// stdin:  a JSON array of LaTeX strings (math only: no surrounding `$`).
// stdout: a JSON array, one entry per input string, {"ok": true, "error": null} or
//         {"ok": false, "error": "<KaTeX's message>"}.
// Each string is rendered in display mode (so `align*` environments are accepted as given) with
// throwOnError, and with strict: "error" so that what KaTeX would only warn about (non-LaTeX
// input such as Unicode in math mode) is an error too. Exit code 0 when every string was tried
// (whatever the outcome), 2 on bad input or when KaTeX cannot be loaded.
//
// Install KaTeX first: `npm ci` in the repository root (package-lock.json pins the version).

let katex;
try {
  katex = (await import("katex")).default;
} catch (err) {
  process.stderr.write(`katex_check: cannot load the katex package (${err.message}); ` +
    "run `npm ci` in the repository root\n");
  process.exit(2);
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let input;
try {
  input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
} catch (err) {
  process.stderr.write(`katex_check: stdin is not JSON: ${err.message}\n`);
  process.exit(2);
}
if (!Array.isArray(input) || !input.every((s) => typeof s === "string")) {
  process.stderr.write("katex_check: stdin must be a JSON array of strings\n");
  process.exit(2);
}

const options = { throwOnError: true, displayMode: true, strict: "error", output: "htmlAndMathml" };
const results = input.map((tex) => {
  try {
    katex.renderToString(tex, options);
    return { ok: true, error: null };
  } catch (err) {
    return { ok: false, error: String(err && err.message ? err.message : err) };
  }
});
process.stdout.write(JSON.stringify(results) + "\n");
