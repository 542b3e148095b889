// Authentication to the HTTP endpoint (README "Send to an HTTP endpoint", seed 003): none, bearer, OAuth2 client
// credentials (body form or Basic) and OAuth2 password (with refresh tokens). Secrets are
// read from { env } / { file } references when the run starts; every message built here
// passes through `scrub`, so no secret or token is ever printed or stored.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { HttpAuthConfig, SecretRef } from '../config/http-schema.js';
import { ConfigError, StorageError } from '../errors.js';

export interface Authenticator {
  /** The Authorization header value for the next request (fetches a token when needed). */
  header(): Promise<string | undefined>;
  /** Whether a 401/403 is worth one more try with a fresh token. */
  readonly refreshable: boolean;
  /** Drops the current token: the next header() fetches a new one. */
  invalidate(): void;
  /** What to name in an error (the token URL, or the auth type). */
  readonly describe: string;
  /** Removes every secret and token value from a text. */
  scrub(text: string): string;
}

export async function resolveSecret(ref: SecretRef, where: string, configDir: string): Promise<string> {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === '')
      throw new ConfigError(`${where}: the environment variable ${ref.env} is not set; export it before running audex`);
    return value;
  }
  const file = path.resolve(configDir, ref.file);
  try {
    const value = (await readFile(file, 'utf8')).trim();
    if (value === '') throw new ConfigError(`${where}: the secret file ${file} is empty`);
    return value;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(
      `${where}: cannot read the secret file ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

interface Token {
  access: string;
  refresh?: string;
  /** Epoch ms after which the token is fetched again (a margin before its expiry). */
  renewAt: number;
}

export async function createAuthenticator(
  auth: HttpAuthConfig,
  configDir: string,
  timeoutMs: number,
  now: () => number = Date.now,
): Promise<Authenticator> {
  const secrets: string[] = [];
  const scrub = (text: string) => secrets.reduce((t, s) => (s.length >= 4 ? t.split(s).join('***') : t), text);
  const remember = (s: string) => {
    secrets.push(s, encodeURIComponent(s), Buffer.from(s).toString('base64'));
    return s;
  };
  if (auth.type === 'none')
    return {
      header: async () => undefined,
      refreshable: false,
      invalidate: () => undefined,
      describe: 'no authentication',
      scrub,
    };
  if (auth.type === 'bearer') {
    const token = remember(await resolveSecret(auth.token, 'destination.auth.token', configDir));
    return {
      header: async () => `Bearer ${token}`,
      refreshable: false,
      invalidate: () => undefined,
      describe: 'the bearer token (destination.auth.token)',
      scrub,
    };
  }
  const clientSecret = remember(await resolveSecret(auth.clientSecret, 'destination.auth.clientSecret', configDir));
  const password =
    auth.type === 'oauth2Password'
      ? remember(await resolveSecret(auth.password, 'destination.auth.password', configDir))
      : undefined;
  if (auth.type === 'oauth2ClientCredentials' && auth.clientCredentialsType === 'basicAuthorization')
    remember(`${auth.clientId}:${clientSecret}`);
  const tokenUrl = auth.tokenUrl;
  let token: Token | null = null;

  const request = async (grant: Record<string, string>): Promise<Token> => {
    const form = new URLSearchParams(grant);
    const headers: Record<string, string> = {
      'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8',
      Accept: 'application/json',
    };
    if (auth.type === 'oauth2ClientCredentials' && auth.clientCredentialsType === 'basicAuthorization') {
      headers['Authorization'] =
        `Basic ${Buffer.from(`${encodeURIComponent(auth.clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
      remember(
        Buffer.from(`${encodeURIComponent(auth.clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64'),
      );
    } else {
      form.set('client_id', auth.clientId);
      form.set('client_secret', clientSecret);
    }
    if (auth.scope) form.set('scope', auth.scope);
    let response: Response;
    try {
      response = await fetch(tokenUrl, {
        method: 'POST',
        headers,
        body: form.toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new StorageError(
        scrub(
          `cannot reach the token endpoint ${tokenUrl}: ${describeFetchError(error)}; check destination.auth.tokenUrl and the network. Nothing was committed; run again`,
        ),
      );
    }
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Not JSON: refused below.
    }
    const access = typeof body['access_token'] === 'string' ? body['access_token'] : undefined;
    if (!response.ok || !access) {
      const reason = typeof body['error'] === 'string' ? ` (${body['error']})` : '';
      throw new StorageError(
        scrub(
          `the token endpoint ${tokenUrl} refused to issue a token: HTTP ${response.status}${reason}; check destination.auth (client id, secret${auth.type === 'oauth2Password' ? ', username, password' : ''}). Nothing was committed; run again once fixed`,
        ),
      );
    }
    remember(access);
    const refresh = typeof body['refresh_token'] === 'string' ? remember(body['refresh_token']) : undefined;
    const lifetime =
      typeof body['expires_in'] === 'number'
        ? body['expires_in'] * 1000
        : Number(body['expires_in']) * 1000 || 3_600_000;
    const margin = Math.min(60_000, lifetime / 10);
    return { access, ...(refresh ? { refresh } : {}), renewAt: now() + lifetime - margin };
  };

  const fresh = async (): Promise<Token> => {
    if (token?.refresh) {
      try {
        return await request({ grant_type: 'refresh_token', refresh_token: token.refresh });
      } catch {
        // A refused refresh token: fall back to the full grant below.
      }
    }
    if (auth.type === 'oauth2Password')
      return request({ grant_type: 'password', username: auth.username, password: password! });
    return request({ grant_type: 'client_credentials' });
  };
  let inFlight: Promise<Token> | null = null;
  return {
    async header() {
      if (!token || now() >= token.renewAt) {
        inFlight ??= fresh().finally(() => (inFlight = null));
        token = { ...(await inFlight) };
      }
      return `Bearer ${token.access}`;
    },
    refreshable: true,
    invalidate() {
      if (token) token.renewAt = 0;
    },
    describe: `the token from ${tokenUrl}`,
    scrub,
  };
}

export function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? error.message;
  }
  return String(error);
}
