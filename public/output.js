// The output panel: one task's output, streamed live as it is written, with
// the run's state, a stop button while it runs, and its exit code once it
// ends.

import * as api from "./api.js";
import { Terminal } from "./terminal.js";
import { formatDuration } from "./time.js";
import { stateText } from "./tasks.js";

export class OutputPanel {
  // tasks: looks a task up by name, for its latest state.
  constructor(root, tasks) {
    this.root = root;
    this.tasks = tasks;
    this.title = root.querySelector("#output-task");
    this.status = root.querySelector("#output-status");
    this.stopButton = root.querySelector("#output-stop");
    this.followButton = root.querySelector("#output-follow");
    this.trimmed = root.querySelector("#output-trimmed");
    this.raw = root.querySelector("#output-raw");
    this.terminal = new Terminal(root.querySelector("#output"), {
      onFollowChange: (following) => { this.followButton.hidden = following; },
      onTrim: (lines) => {
        this.trimmed.hidden = false;
        this.trimmed.firstChild.textContent =
          `The first ${lines.toLocaleString()} lines are not shown here. `;
      },
    });
    this.name = null;
    this.controller = null;
    // Counts what was asked of the panel, so that an answer that comes after
    // a later request is not shown over it.
    this.requests = 0;
    this.timer = false;
    this.stopButton.addEventListener("click", () => this.stop());
    this.followButton.addEventListener("click", () => this.terminal.follow());
  }

  // Start a task and show its whole output. Fails, leaving the panel as it
  // was, when the task cannot start.
  async run(task, parameters) {
    const request = ++this.requests;
    const controller = new AbortController();
    const response = await api.startWithOutput(task.name, parameters, controller.signal);
    if (request !== this.requests) {
      // Someone asked for other output meanwhile: the run goes on unseen.
      controller.abort();
      return;
    }
    this.show(task, controller, true);
    this.stream(task, response, controller, true);
  }

  // Show the output of a task's latest run, following it if it runs.
  async view(task) {
    if (this.name === task.name && this.controller) {
      this.terminal.follow();
      this.root.querySelector("#output").focus();
      return;
    }
    ++this.requests;
    const controller = new AbortController();
    const running = task.state === "running";
    this.show(task, controller, running);
    let response;
    try {
      response = await api.output(task.name, controller.signal);
    } catch (error) {
      if (error.name !== "AbortError") this.setStatus("ended", error.message);
      throw error;
    }
    this.stream(task, response, controller, false);
  }

  show(task, controller, running) {
    if (this.controller) this.controller.abort();
    this.controller = controller;
    this.name = task.name;
    this.title.textContent = task.name;
    this.trimmed.hidden = true;
    this.raw.href = api.taskPath(task.name, "output");
    this.raw.hidden = !task.buffered;
    this.terminal.reset();
    this.setStatus("streaming", running ? "running…" : "loading…", running);
    this.stopButton.hidden = !(task.can_run && running);
    if (window.matchMedia("(max-width: 52rem)").matches) {
      this.root.scrollIntoView({ block: "start" });
    }
  }

  async stream(task, response, controller, started) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let received = 0;
    let lost = null;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        await this.terminal.write(decoder.decode(value, { stream: true }));
      }
      await this.terminal.write(decoder.decode());
    } catch (error) {
      lost = error;
    }
    if (controller.signal.aborted) return;
    await this.terminal.end();
    if (controller.signal.aborted) return;
    this.controller = null;
    this.stopButton.hidden = true;
    if (lost) {
      this.setStatus("ended", "connection lost: the output shown may be incomplete");
      return;
    }
    await this.showEnd(task, started, received);
  }

  // How the run shown ended.
  async showEnd(task, started, received) {
    if (!started && task.state === "new" && received === 0) {
      this.setStatus("ended", "never run");
      return;
    }
    let text;
    try {
      const exitCode = await api.exitCode(task.name);
      // A run without an exit code was stopped, or timed out: the list says.
      let timedOut = false;
      if (exitCode === null) {
        const listed = (await api.listTasks()).find((each) => each.name === task.name);
        timedOut = Boolean(listed && listed.timed_out);
      }
      text = stateText({ state: "finished", exit_code: exitCode, timed_out: timedOut });
    } catch (error) {
      text = error.message;
    }
    if (!task.buffered && !started && received === 0) {
      text += " · this task's output is only shown while it runs";
    }
    if (this.name === task.name && !this.controller) this.setStatus("ended", text);
  }

  // timer: whether the text is "running…" and its time goes on.
  setStatus(state, text, timer = false) {
    this.status.dataset.state = state;
    this.status.textContent = text;
    this.timer = timer;
  }

  async stop() {
    this.stopButton.disabled = true;
    try {
      await api.stop(this.name);
    } catch (error) {
      this.setStatus(this.status.dataset.state, error.message);
    } finally {
      this.stopButton.disabled = false;
    }
  }

  // A task started or ended, or the list changed: keep the stop button true
  // to what the user may do now.
  event(name, event) {
    if (name !== this.name || !this.controller) return;
    if (event === "Started") this.timer = true;
    this.refresh();
  }

  refresh() {
    if (!this.controller) return;
    const task = this.tasks.get(this.name);
    this.stopButton.hidden = !(task && task.can_run && task.state === "running");
  }

  tick() {
    if (!this.timer || !this.controller) return;
    const seconds = this.tasks.elapsed(this.name);
    if (seconds !== null) this.status.textContent = `running… ${formatDuration(seconds)}`;
  }
}
