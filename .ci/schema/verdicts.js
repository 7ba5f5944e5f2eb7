// verdicts.js OUT ERR RESULTS FILE... reads what one `ajv validate` run over FILE...
// wrote to stdout (OUT) and stderr (ERR), and appends one line per decided file to
// RESULTS: "FILE<TAB>valid", "FILE<TAB>invalid<TAB>reasons" or
// "FILE<TAB>error<TAB>message". Ajv checks the files in order and stops at the first
// one it cannot read (bad YAML): that file gets the error, and the files after it
// are left undecided. Prints how many files were decided.
"use strict";
const fs = require("fs");

const [outFile, errFile, results, ...files] = process.argv.slice(2);
const lines = (fs.readFileSync(outFile, "utf8") + "\n" + fs.readFileSync(errFile, "utf8")).split("\n");
const verdict = new Map();
let stopped = "";
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  if (line.startsWith("error:")) {
    stopped = line.replace(/^error:\s*/, "").trim();
    continue;
  }
  const sp = line.lastIndexOf(" ");
  if (sp < 0) continue;
  const file = line.slice(0, sp);
  const word = line.slice(sp + 1);
  if (word === "valid") verdict.set(file, "valid");
  // With --errors=text, Ajv writes the reasons on the line after "FILE invalid".
  else if (word === "invalid") verdict.set(file, "invalid\t" + (lines[i + 1] || "").trim());
}

let out = "";
let n = 0;
for (const f of files) {
  n++;
  if (!verdict.has(f)) {
    out += f + "\terror\t" + (stopped || "Ajv gave no verdict") + "\n";
    break;
  }
  out += f + "\t" + verdict.get(f) + "\n";
}
fs.appendFileSync(results, out);
console.log(n);
