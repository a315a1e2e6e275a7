// The task list: each task the user may see, its state and how long it has
// run, and, where the user may, a form to run it and buttons to stop it and
// to show its output. Kept up to date from events; redrawn in place, so
// that a refresh never loses what someone is typing.

import { listTasks } from "./api.js";
import { formatDuration } from "./time.js";

function element(tag, properties = {}, ...children) {
  const created = document.createElement(tag);
  Object.assign(created, properties);
  created.append(...children);
  return created;
}

// What a task's entry is built from; when it changes, the entry is rebuilt.
function shape(task) {
  return JSON.stringify([
    task.meta, task.can_run, task.can_view_output,
    task.arguments.map(({ name, datatype, enum_source }) => [name, datatype, enum_source]),
  ]);
}

// Whether running a task saves its output as a file.
export function isDownload(task) {
  return Boolean(task.meta) && task.meta.download === true && task.can_view_output;
}

export function stateText(task) {
  if (task.state === "new") return "never run";
  if (task.state === "running") return "running";
  if (task.exit_code === null) return task.timed_out ? "timed out" : "stopped";
  if (task.exit_code === 0) return "exit code 0";
  return `failed: exit code ${task.exit_code}`;
}

export class TaskList {
  // actions: run(task, parameters), stop(task), view(task), each returning
  // a promise that fails with the error to show beside the task; and
  // rendered(), told whenever the list was fetched again.
  constructor(list, message, actions) {
    this.list = list;
    this.message = message;
    this.actions = actions;
    this.entries = new Map();
    this.changes = 0;
    this.refreshing = null;
    this.refreshAgain = false;
  }

  get(name) {
    const entry = this.entries.get(name);
    return entry ? entry.task : null;
  }

  // Fetch the list again. Calls while one is under way lead to one more.
  refresh() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        const changes = this.changes;
        try {
          const tasks = await listTasks();
          this.message.hidden = true;
          this.render(tasks);
        } catch (error) {
          this.message.textContent = `The task list cannot be shown: ${error.message}`;
          this.message.hidden = false;
        }
        // An event that came in meanwhile may be newer than the list.
        if (this.changes !== changes) this.refreshAgain = true;
      } while (this.refreshAgain);
      this.refreshing = null;
    })();
    return this.refreshing;
  }

  render(tasks) {
    const now = performance.now();
    const seen = new Set();
    let previous = null;
    for (const task of tasks) {
      seen.add(task.name);
      let entry = this.entries.get(task.name);
      if (!entry || entry.shape !== shape(task)) {
        const item = this.build(task);
        if (entry) entry.item.replaceWith(item);
        entry = { item, shape: shape(task) };
        this.entries.set(task.name, entry);
      }
      entry.task = task;
      entry.receivedAt = now;
      const position = previous ? previous.nextSibling : this.list.firstChild;
      if (position !== entry.item) this.list.insertBefore(entry.item, position);
      previous = entry.item;
    }
    for (const [name, entry] of this.entries) {
      if (!seen.has(name)) {
        entry.item.remove();
        this.entries.delete(name);
      }
    }
    // Once every task is known: an Enum's offer to run its source depends
    // on the source, wherever it is in the list.
    for (const entry of this.entries.values()) this.update(entry);
    if (tasks.length === 0) {
      this.message.textContent = "There are no tasks for you here.";
      this.message.hidden = false;
    }
    this.actions.rendered();
  }

  build(task) {
    const item = element("li", { className: "task" });
    item.dataset.task = task.name;
    const head = element("div", { className: "task-head" },
      element("h3", { className: "task-name", textContent: task.name }),
      element("span", { className: "task-badge" },
        element("span", { className: "task-state" }),
        element("span", { className: "task-elapsed" })));
    item.append(head);
    if (task.meta && typeof task.meta.description === "string") {
      item.append(element("p", { className: "task-description", textContent: task.meta.description }));
    }
    const error = element("p", { className: "task-error" });
    error.setAttribute("role", "alert");
    const actions = element("div", { className: "actions" });
    if (task.can_run) {
      const form = element("form", { className: "task-form", noValidate: true });
      form.setAttribute("aria-label", `Run ${task.name}`);
      const fields = element("div", { className: "fields" });
      for (const argument of task.arguments) fields.append(this.field(task, argument));
      const download = isDownload(task);
      const run = element("button", { type: "submit", className: "run", textContent: download ? "Download" : "Run" });
      const stop = element("button", { type: "button", className: "stop", textContent: "Stop", hidden: true });
      stop.addEventListener("click", () => this.act(item, () => this.actions.stop(this.get(task.name))));
      actions.append(run, stop);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        // Run stays focusable while the task runs (a disabled button would
        // drop the keyboard's focus), so it is checked here.
        if (run.getAttribute("aria-disabled") === "true") return;
        const waiting = form.querySelector(".not-ready:not([hidden]) .not-ready-text");
        if (waiting) {
          this.showError(item, waiting.textContent);
          return;
        }
        const parameters = new URLSearchParams(new FormData(form));
        run.setAttribute("aria-disabled", "true");
        this.act(item, () => this.actions.run(this.get(task.name), parameters))
          .finally(() => this.update(this.entries.get(task.name)));
      });
      if (task.arguments.length) form.append(fields);
      form.append(actions, error);
      item.append(form);
    }
    if (task.can_view_output) {
      const view = element("button", { type: "button", className: "view", textContent: "Show output" });
      view.addEventListener("click", () => this.act(item, () => this.actions.view(this.get(task.name))));
      actions.append(view);
      if (!task.can_run) item.append(actions, error);
    }
    return item;
  }

  field(task, argument) {
    const label = element("label", { className: "field" },
      element("span", { className: "field-name", textContent: argument.name }));
    if (argument.datatype !== "Enum") {
      const input = element("input", { name: argument.name, required: true, autocomplete: "off" });
      if (argument.datatype === "Int") {
        input.type = "number";
        input.step = "1";
        input.inputMode = "numeric";
      } else {
        input.type = "text";
        input.spellcheck = false;
      }
      label.append(input);
      return label;
    }
    const select = element("select", { name: argument.name, required: true });
    label.append(select);
    const source = argument.enum_source;
    const notReady = element("p", { className: "not-ready", hidden: true },
      element("span", { className: "not-ready-text" }));
    notReady.dataset.argument = argument.name;
    if (source) {
      const runSource = element("button", { type: "button", className: "run-source", textContent: `Run ${source}`, hidden: true });
      runSource.addEventListener("click", () => this.runSource(task, source));
      notReady.append(" ", runSource);
    }
    const wrapper = element("div", { className: "enum-field" }, label, notReady);
    return wrapper;
  }

  // Run an Enum's source task: at once when it takes no arguments, else
  // by taking the user to its form.
  runSource(task, source) {
    const entry = this.entries.get(source);
    const form = entry && entry.item.querySelector("form.task-form");
    if (!form) {
      const item = this.entries.get(task.name).item;
      this.showError(item, `You may not run ${source}; ask someone who may.`);
      return;
    }
    if (entry.task.arguments.length === 0) {
      form.requestSubmit();
      return;
    }
    entry.item.scrollIntoView({ block: "nearest" });
    form.querySelector("input, select").focus();
  }

  async act(item, action) {
    this.showError(item, "");
    try {
      await action();
    } catch (error) {
      if (error.name !== "AbortError") this.showError(item, error.message);
    }
  }

  showError(item, message) {
    const error = item.querySelector(".task-error");
    if (error) error.textContent = message;
  }

  // Show an entry's state, elapsed time, buttons and Enum values.
  update(entry) {
    if (!entry) return;
    const { item, task } = entry;
    item.dataset.state = task.state;
    if (task.state === "finished" && task.exit_code !== null) item.dataset.exitCode = task.exit_code;
    else delete item.dataset.exitCode;
    item.querySelector(".task-state").textContent = stateText(task);
    const stop = item.querySelector("button.stop");
    if (stop) stop.hidden = task.state !== "running";
    const run = item.querySelector("button.run");
    if (run) run.setAttribute("aria-disabled", String(task.state === "running"));
    this.tickEntry(entry);
    for (const argument of task.arguments) {
      if (argument.datatype === "Enum") this.fillEnum(item, argument);
    }
  }

  fillEnum(item, argument) {
    const select = item.querySelector(`select[name="${CSS.escape(argument.name)}"]`);
    if (!select) return;
    const values = argument.values;
    const notReady = item.querySelector(`.not-ready[data-argument="${CSS.escape(argument.name)}"]`);
    const source = argument.enum_source;
    let problem = null;
    if (values === null) {
      problem = source
        ? `Not ready yet: run ${source} first.`
        : "Not ready yet: its values come from a task that has not run.";
    } else if (values.length === 0) {
      problem = source
        ? `No values: the last run of ${source} printed none. Run ${source} again?`
        : "No values: the task they come from printed none.";
    }
    const hadFocus = notReady.contains(document.activeElement);
    notReady.hidden = problem === null;
    notReady.querySelector(".not-ready-text").textContent = problem || "";
    const runSource = notReady.querySelector("button.run-source");
    if (runSource) {
      const sourceTask = this.get(source);
      runSource.hidden = !(sourceTask && sourceTask.can_run);
    }
    select.disabled = !values || values.length === 0;
    const current = Array.from(select.options, (option) => option.value);
    const wanted = [...new Set(values || [])];
    if (current.length === wanted.length && current.every((value, i) => value === wanted[i])) return;
    const chosen = select.value;
    select.replaceChildren(...wanted.map((value) => new Option(value, value)));
    if (wanted.includes(chosen)) select.value = chosen;
    // The button that ran the source is gone: the choice it made possible
    // takes the focus.
    if (hadFocus && notReady.hidden && !select.disabled) select.focus();
  }

  // How long a task's latest run has run, or ran; null before its first.
  elapsed(name) {
    const entry = this.entries.get(name);
    if (!entry || entry.task.duration === null || entry.task.duration === undefined) return null;
    const { task, receivedAt } = entry;
    if (task.state !== "running") return task.duration;
    return task.duration + (performance.now() - receivedAt) / 1000;
  }

  tickEntry(entry) {
    const { item, task } = entry;
    const elapsed = item.querySelector(".task-elapsed");
    const seconds = this.elapsed(task.name);
    if (seconds === null) {
      elapsed.textContent = "";
      return;
    }
    elapsed.textContent = formatDuration(seconds);
    elapsed.title = task.started_at ? `started ${new Date(task.started_at).toLocaleString()}` : "";
  }

  tick() {
    for (const entry of this.entries.values()) {
      if (entry.task.state === "running") this.tickEntry(entry);
    }
  }

  // An event from Taru: show it at once, and fetch what it may have changed.
  event(name, event) {
    this.changes++;
    if (event === "UpdateConfig" || event === "Resync") {
      this.refresh();
      return;
    }
    const entry = this.entries.get(name);
    if (entry && event === "Started") {
      entry.task = { ...entry.task, state: "running", exit_code: null, timed_out: false, duration: 0, started_at: new Date().toISOString() };
      entry.receivedAt = performance.now();
      this.update(entry);
    } else if (entry && event && typeof event === "object" && "ExitStatus" in event) {
      const ran = this.elapsed(name);
      entry.task = { ...entry.task, state: "finished", exit_code: event.ExitStatus, duration: ran };
      this.update(entry);
      // Whether a run without an exit code timed out is in the list only.
      if (this.feedsAnEnum(name) || event.ExitStatus === null) this.refresh();
    }
  }

  // Whether a task's output gives some shown task's Enum its values.
  feedsAnEnum(name) {
    for (const { task } of this.entries.values()) {
      for (const argument of task.arguments) {
        if (argument.datatype === "Enum" && (argument.enum_source === name || !argument.enum_source)) return true;
      }
    }
    return false;
  }
}
