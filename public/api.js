// Requests to Taru's API, relative to the page, so that the page works under
// any prefix a proxy serves it at.

export class ApiError extends Error {
  constructor(status, message) {
    super(message || `the server answered ${status}`);
    this.status = status;
  }
}

export function taskPath(name, action = "") {
  return `api/v1/task/${encodeURIComponent(name)}${action ? `/${action}` : ""}`;
}

// Fetch, and turn an error status into an ApiError carrying the server's
// own words, and a failed connection into one that says so.
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { cache: "no-store", ...options });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "Taru cannot be reached; check your connection and try again.");
  }
  if (!response.ok) {
    const text = (await response.text()).trim();
    throw new ApiError(response.status, text);
  }
  return response;
}

export async function listTasks() {
  const response = await request("api/v1/tasks");
  return Object.values(await response.json());
}

export function start(name, parameters) {
  return request(taskPath(name), { method: "POST", body: parameters });
}

export function startWithOutput(name, parameters, signal) {
  return request(taskPath(name, "output"), { method: "POST", body: parameters, signal });
}

export function output(name, signal) {
  return request(taskPath(name, "output"), { signal });
}

export function stop(name) {
  return request(taskPath(name, "stop"), { method: "POST" });
}

// The exit code of the task's latest run, once it has ended: a number, or
// null when a signal ended it.
export async function exitCode(name) {
  const response = await request(taskPath(name, "status"));
  return JSON.parse(await response.text());
}
