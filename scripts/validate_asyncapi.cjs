#!/usr/bin/env node
// Validate AsyncAPI documents with the AsyncAPI project's own parser (@asyncapi/parser, from
// .tools/, which scripts/_environment.sh installs):
//
//     node scripts/validate_asyncapi.cjs asyncapi.json [more.json ...]
//
// Prints each diagnostic of severity error as `file: code: message (at path)`. Exit status: 0
// every document is valid, 1 one has errors, 2 a file cannot be read or the parser is missing.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

function loadParser() {
  const tools = path.join(__dirname, "..", ".tools");
  try {
    return require(require.resolve("@asyncapi/parser", { paths: [tools] }));
  } catch (error) {
    console.error(
      `error: @asyncapi/parser is missing from ${tools}: run \`source scripts/_environment.sh\``,
    );
    process.exit(2);
  }
}

async function errorsOf(parser, severity, file) {
  const { diagnostics } = await parser.parse(fs.readFileSync(file, "utf8"), { source: file });
  return diagnostics
    .filter((diagnostic) => diagnostic.severity === severity)
    .map(({ code, message, path: at }) => `${file}: ${code}: ${message} (at /${at.join("/")})`);
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node scripts/validate_asyncapi.cjs FILE [FILE ...]");
    return 2;
  }
  const { Parser, DiagnosticSeverity } = loadParser();
  const parser = new Parser();
  let status = 0;
  for (const file of files) {
    let errors;
    try {
      errors = await errorsOf(parser, DiagnosticSeverity.Error, file);
    } catch (error) {
      console.error(`error: cannot validate ${file}: ${error.message}`);
      return 2;
    }
    for (const line of errors) console.log(line);
    if (errors.length > 0) status = 1;
  }
  return status;
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
