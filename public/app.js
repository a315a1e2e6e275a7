"use strict";
// A small client of Taru's API: lists tasks, runs them, shows live output.

const api = "api/v1";

async function loadTasks() {
  const response = await fetch(`${api}/tasks`);
  const list = document.getElementById("tasks");
  list.replaceChildren();
  if (!response.ok) {
    list.textContent = await response.text();
    return;
  }
  for (const task of Object.values(await response.json())) {
    list.append(renderTask(task));
  }
}

function renderTask(task) {
  const item = document.createElement("li");
  const name = document.createElement("span");
  name.className = "task-name";
  name.textContent = task.name;
  const state = document.createElement("span");
  state.className = "task-state";
  state.textContent = task.exit_code === null ? task.state : `${task.state} (exit ${task.exit_code})`;
  item.append(name, state);
  if (task.meta && task.meta.description) {
    const description = document.createElement("div");
    description.textContent = task.meta.description;
    item.append(description);
  }
  if (task.can_run) {
    item.append(renderForm(task));
  }
  return item;
}

function renderForm(task) {
  const form = document.createElement("form");
  for (const argument of task.arguments) {
    const label = document.createElement("label");
    label.textContent = `${argument.name} `;
    let input;
    if (argument.datatype === "Enum") {
      input = document.createElement("select");
      for (const value of argument.values || []) {
        input.append(new Option(value, value));
      }
    } else {
      input = document.createElement("input");
      input.type = argument.datatype === "Int" ? "number" : "text";
    }
    input.name = argument.name;
    label.append(input);
    form.append(label);
  }
  const button = document.createElement("button");
  button.textContent = "Run";
  const error = document.createElement("span");
  error.className = "error";
  form.append(button, error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    run(task, new URLSearchParams(new FormData(form)), error);
  });
  return form;
}

async function run(task, parameters, error) {
  const path = `${api}/task/${encodeURIComponent(task.name)}`;
  if (!task.can_view_output) {
    const response = await fetch(path, { method: "POST", body: parameters });
    if (!response.ok) error.textContent = await response.text();
    return;
  }
  const response = await fetch(`${path}/output`, { method: "POST", body: parameters });
  if (!response.ok) {
    error.textContent = await response.text();
    return;
  }
  if (task.meta && task.meta.download) {
    save(await response.blob(), response.headers.get("content-disposition"), task.name);
    return;
  }
  const output = document.getElementById("output");
  document.getElementById("output-task").textContent = task.name;
  output.textContent = "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    output.append(decoder.decode(value, { stream: true }));
    output.scrollTop = output.scrollHeight;
  }
}

// Save a downloaded output under the name its content-disposition gives.
function save(blob, disposition, fallback) {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? decodeURIComponent(match[1]) : `${fallback}.txt`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function listen() {
  const status = document.getElementById("connection");
  const events = new EventSource("events");
  events.onopen = () => { status.textContent = "live"; loadTasks(); };
  events.onerror = () => { status.textContent = "reconnecting…"; };
  events.onmessage = (message) => {
    const [, event] = JSON.parse(message.data);
    if (event !== "Ping") loadTasks();
  };
}

listen();
