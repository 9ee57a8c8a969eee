/**
 * The request to the workbench server extension, with Jupyter's own auth:
 * `ServerConnection.makeRequest` sends the token and the XSRF header.
 */
import { ServerConnection } from '@jupyterlab/services';

import { errorMessage } from './errors';
import { ISummary, readSummary } from './types';
import { summaryUrl } from './urls';

/** GET `workbench/api/summary`; rejects with an Error carrying the message to show. */
export async function fetchSummary(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<ISummary> {
  const url = summaryUrl(settings.baseUrl);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, { method: 'GET' }, settings);
  } catch (reason) {
    throw new Error(
      `Cannot reach the Jupyter server: ${
        reason instanceof Error ? reason.message : String(reason)
      }`
    );
  }
  const body = await response.text();
  if (!response.ok) {
    throw new Error(errorMessage(response.status, response.statusText, body));
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new Error('The workbench server did not answer JSON');
  }
  return readSummary(data);
}
