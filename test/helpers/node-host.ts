/**
 * Importing this installs the Node/Deno/Bun host (`src/hosts/node.ts`), as
 * `snapbundle` and its CLI do: suites that drive the core directly need its
 * `.wasm` reader, Workers and process probe. Suites import it through the
 * helpers that give them a home or a filesystem.
 */

import { installHost } from "../../src/host.js";
import { nodeHost } from "../../src/hosts/node.js";

installHost(nodeHost());
