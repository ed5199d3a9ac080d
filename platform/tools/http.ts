// One HTTP request for health and readiness checks of the servers we run and for their APIs: over HTTP or
// HTTPS, verifying a given CA (or knowingly not, for a self-signed health endpoint), with a bearer token,
// and over a connection of the caller's choosing (forward.ts's Dial reaches an address inside a sandbox).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Dial } from './forward.js';

export interface GetOptions {
  /** PEM of the CA that must have signed the server's certificate. */
  ca?: string;
  /** Skip certificate verification: only for a health endpoint's self-signed certificate. */
  insecure?: boolean;
  /** Name the certificate must carry when the URL's host is not in it (an address through a forward). */
  servername?: string;
  token?: string;
  timeoutMs?: number;
  /** Connect through this instead of to the URL's host directly. */
  dial?: Dial;
}

export interface GetResult {
  status: number;
  body: string;
}

export interface RequestOptions extends GetOptions {
  /** Default GET. */
  method?: string;
  body?: string;
  contentType?: string;
}

export function httpGet(url: string, options: GetOptions = {}): Promise<GetResult> {
  return httpRequest(url, options);
}

export function httpRequest(url: string, options: RequestOptions = {}): Promise<GetResult> {
  const method = options.method ?? 'GET';
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const port = Number(target.port || (secure ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const timeoutMs = options.timeoutMs ?? 5_000;
  const tlsOptions: tls.ConnectionOptions = {
    ...(options.ca ? { ca: options.ca } : {}),
    rejectUnauthorized: !options.insecure,
    ...(options.servername ? { servername: options.servername } : {}),
  };
  const dial = options.dial;
  const createConnection = dial
    ? (_opts: unknown, callback: (err: Error | null, socket?: Duplex) => void): undefined => {
        dial({ host, port }).then(
          (raw) =>
            // host: what the certificate is checked against when there is no servername (IP SANs too).
            callback(
              null,
              secure ? tls.connect({ ...tlsOptions, socket: raw, host, servername: options.servername ?? (net.isIP(host) ? undefined : host) }) : raw,
            ),
          (err: Error) => callback(err),
        );
        return undefined;
      }
    : undefined;
  return new Promise((resolve, reject) => {
    const request = (secure ? https : http).request(
      target,
      {
        method,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.contentType ? { 'content-type': options.contentType } : {}),
        },
        timeout: timeoutMs,
        ...(secure ? tlsOptions : {}),
        // Without an agent, Node uses createConnection for the one connection of this request.
        ...(createConnection ? { createConnection } : {}),
      } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

/** True when GET url answers 2xx. */
export async function getOk(url: string, options: GetOptions = {}): Promise<boolean> {
  try {
    const res = await httpGet(url, options);
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}
