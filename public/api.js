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

// The tasks the user may see, in the order Taru lists them. A parsed JSON
// object puts keys that look like numbers ("10", "2") first, so the order
// is read from the text itself.
export async function listTasks() {
  const response = await request("api/v1/tasks");
  const text = await response.text();
  const tasks = JSON.parse(text);
  return topLevelKeys(text).map((name) => tasks[name]);
}

// The keys of a JSON object's text, in the order they are written.
export function topLevelKeys(text) {
  const keys = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const character = text[i];
    if (character === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, end + 1)));
      expectKey = false;
      i = end;
    } else if (character === "{" || character === "[") {
      depth++;
      expectKey = depth === 1;
    } else if (character === "}" || character === "]") {
      depth--;
    } else if (character === "," && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
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
