/**
 * The options of the registry commands (`push`, `pull`, `inspect REF`,
 * `verify REF`), apart from `./oci.ts` so that `./args.ts` can list them
 * without importing the commands.
 *
 * @module
 */

/** The shape of an option of `./args.ts` (`OptionSpec`), written out: args.ts imports this file. */
interface RegistryOptionSpec {
  readonly type: "string" | "boolean";
  readonly check?: (value: string) => string | null;
}

/** The options every registry command takes. */
export const REGISTRY_OPTIONS: Readonly<Record<string, RegistryOptionSpec>> = {
  "plain-http": { type: "boolean" },
  insecure: { type: "boolean" },
  "ca-file": { type: "string" },
  creds: { type: "string" },
  retries: { type: "string", check: (v) => (/^\d{1,2}$/.test(v) ? null : "must be a number of retries, 0 to 99") },
};

/** Help lines of {@link REGISTRY_OPTIONS}. */
export const REGISTRY_HELP = `Registry options:
  --plain-http     speak HTTP, not HTTPS (loopback and test registries)
  --insecure       accept any TLS certificate (not on Deno: use --ca-file)
  --ca-file FILE   trust the CA certificates (PEM) in FILE as well
  --creds USER:PASSWORD
                   credentials (else SNAPBUNDLE_REGISTRY_USER and
                   SNAPBUNDLE_REGISTRY_PASSWORD, else the auths of
                   $DOCKER_CONFIG/config.json or ~/.docker/config.json)
  --retries N      retries after 429, 5xx or a broken connection (default 4)`;

