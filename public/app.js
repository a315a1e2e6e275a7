// Taru's web page: the task list, the output panel, and the event stream
// that keeps both up to date. It speaks only to Taru's API and events.

import * as api from "./api.js";
import { save } from "./download.js";
import { connect } from "./events.js";
import { OutputPanel } from "./output.js";
import { TaskList, isDownload } from "./tasks.js";

const connection = document.getElementById("connection");
const connectionWords = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
};

const tasks = new TaskList(
  document.getElementById("tasks"),
  document.getElementById("tasks-message"),
  {
    run: (task, parameters) => run(task, parameters),
    stop: (task) => api.stop(task.name),
    view: (task) => output.view(task),
    rendered: () => output.refresh(),
  },
);
const output = new OutputPanel(document.getElementById("output-panel"), tasks);

// Run a task the way its settings ask: save its output as a file, show it
// live, or, for those who may not see output, only start it.
async function run(task, parameters) {
  if (isDownload(task)) {
    const response = await api.startWithOutput(task.name, parameters);
    await save(response, `${task.name}.txt`);
  } else if (task.can_view_output) {
    await output.run(task, parameters);
  } else {
    await api.start(task.name, parameters);
  }
}

connect({
  onState: (state) => {
    connection.dataset.state = state;
    connection.textContent = connectionWords[state];
  },
  onOpen: () => tasks.refresh(),
  onEvent: (name, event) => {
    tasks.event(name, event);
    output.event(name, event);
  },
});

// The list comes first, whether or not events can be had: a refusal (no or
// an unknown user) is shown in Taru's own words.
tasks.refresh();

setInterval(() => {
  tasks.tick();
  output.tick();
}, 1000);
