// The official ollama JS library (npm "ollama") against the patched Ollama: argv[2] is the host,
// argv[3] the model, argv[4] the folder whose node_modules holds the library (tools/install-deps puts
// it outside the tree). Prints one JSON object with what each call returned, for test_clients.py.
import { createRequire } from "node:module";
import { join } from "node:path";

const [host, model, clients] = process.argv.slice(2);
const { Ollama } = createRequire(join(clients, "package.json"))("ollama");
const ollama = new Ollama({ host });
const options = { temperature: 0, num_predict: 12 };

const generate = await ollama.generate({ model, prompt: "ROCm runs on", raw: true, stream: false, options });
let streamed = "";
for await (const part of await ollama.generate({ model, prompt: "ROCm runs on", raw: true, stream: true, options })) {
  streamed += part.response;
}
const messages = [
  { role: "system", content: "You answer in one word." },
  { role: "user", content: "Which card?" },
];
let chat = "";
for await (const part of await ollama.chat({ model, messages, stream: true, options })) {
  chat += part.message.content;
}
const list = await ollama.list();
const ps = await ollama.ps();
console.log(JSON.stringify({
  generate: generate.response,
  eval_count: generate.eval_count,
  streamed,
  chat,
  models: list.models.map((m) => m.name),
  loaded: ps.models.map((m) => m.name),
}));
