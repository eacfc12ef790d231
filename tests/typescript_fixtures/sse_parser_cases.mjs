// Feeds the compiled client.ts's SseParser fixed chunks, exactly as given, with no network in
// between. Usage: node sse_parser_cases.mjs <folder of client.js>, with on stdin a JSON object
// {case: [chunk, ...]}, each chunk a list of byte values. Prints {case: [finding, ...]}: each
// finding ["event", type, data, id], ["position", id], ["retry", milliseconds] or
// ["comment", text], in order.
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { text } from "node:stream/consumers";

const { SseParser } = await import(pathToFileURL(join(process.argv[2], "client.js")).href);

const cases = JSON.parse(await text(process.stdin));
const found = {};
for (const [name, chunks] of Object.entries(cases)) {
  const findings = (found[name] = []);
  const parser = new SseParser({
    event: (type, data, id) => findings.push(["event", type, data, id ?? null]),
    position: (id) => findings.push(["position", id]),
    retry: (milliseconds) => findings.push(["retry", milliseconds]),
    comment: (comment) => findings.push(["comment", comment]),
  });
  for (const chunk of chunks) parser.push(Uint8Array.from(chunk));
}
console.log(JSON.stringify(found));
