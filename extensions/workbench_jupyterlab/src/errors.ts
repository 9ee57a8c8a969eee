/** Pure: the message shown for a failed answer of the workbench server. */

/**
 * The message to show for a failed answer: the server's JSON `message`,
 * else its status line.
 */
export function errorMessage(
  status: number,
  statusText: string,
  body: string
): string {
  try {
    const data = JSON.parse(body) as { message?: unknown; reason?: unknown };
    if (data && typeof data.message === 'string' && data.message) {
      return data.message;
    }
    if (data && typeof data.reason === 'string' && data.reason) {
      return data.reason;
    }
  } catch {
    // not JSON: fall through
  }
  if (status === 404) {
    return (
      'The workbench server extension is not answering (404 at ' +
      'workbench/api/summary): is the `workbench.jupyter` server extension enabled?'
    );
  }
  return `The workbench server answered ${status}${statusText ? ' ' + statusText : ''}`;
}
