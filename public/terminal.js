// Renders a task's output as a terminal would show it, into an element:
// SGR colours and weights become styled spans, "\r" returns to the start of
// the line so that progress lines overwrite themselves, "\b" steps back,
// "ESC [ K" erases, and every other control sequence is dropped.
//
// Finished lines are appended in blocks of BLOCK_LINES lines, at most once
// per animation frame and at most FRAME_LINES lines or FRAME_SPANS styled
// runs per frame, so that a large output never blocks the page for long;
// the line being written is redrawn in place. Only the last MAX_LINES lines
// are kept on the page. A hidden page draws nothing; it keeps reading, so
// that Taru does not take it for a client that stopped, and keeps the last
// MAX_LINES lines to draw when it is shown again.

const BLOCK_LINES = 500;
const FRAME_LINES = 8000;
const FRAME_SPANS = 6000;
const MAX_LINES = 200000;
const PENDING_LIMIT = 20000;

// A line longer than this is shown as several, as a terminal wraps it; a
// "\r" then goes back to the start of the last part only.
const WRAP = 10000;

// The number of characters as the cursor counts them: code points.
function codePoints(text) {
  return /[\uD800-\uDBFF]/.test(text) ? Array.from(text).length : text.length;
}

const PLAIN = Object.freeze({
  bold: false, dim: false, italic: false, underline: false, strike: false,
  inverse: false, fg: null, bg: null,
});

// The 256-colour palette beyond the 16 named colours: a 6x6x6 cube, then a
// grey ramp.
function paletteColour(index) {
  if (index >= 232) {
    const level = 8 + (index - 232) * 10;
    return `rgb(${level}, ${level}, ${level})`;
  }
  const cube = index - 16;
  const step = (value) => (value === 0 ? 0 : 55 + value * 40);
  const red = step(Math.floor(cube / 36));
  const green = step(Math.floor(cube / 6) % 6);
  const blue = step(cube % 6);
  return `rgb(${red}, ${green}, ${blue})`;
}

const paletteColours = new Set();
for (let index = 16; index < 256; index++) paletteColours.add(paletteColour(index));

// An extended colour from its parameters after 38 or 48 ("5;N" or
// "2;R;G;B"): the colour and how many parameters it took, or null.
function extendedColour(values) {
  if (values[0] === 5 && values.length >= 2) {
    const index = values[1];
    if (!(index >= 0 && index <= 255)) return [undefined, 2];
    return [index < 16 ? index : paletteColour(index), 2];
  }
  if (values[0] === 2 && values.length >= 4) {
    const [red, green, blue] = values.slice(1, 4).map((value) => Math.min(255, Math.max(0, value || 0)));
    return [`rgb(${red}, ${green}, ${blue})`, 4];
  }
  return null;
}

// The style after one SGR ("ESC [ ... m") sequence's parameters. Groups are
// split by ";"; a group may hold ":"-separated parts of one colour, as in
// "38:2::255:0:0".
export function applySgr(style, parameters) {
  const groups = parameters === "" ? ["0"] : parameters.split(";");
  const next = { ...style };
  for (let i = 0; i < groups.length; i++) {
    const parts = groups[i].split(":");
    const code = parts[0] === "" ? 0 : Number(parts[0]);
    if (code === 0 || Number.isNaN(code)) Object.assign(next, PLAIN);
    else if (code === 1) next.bold = true;
    else if (code === 2) next.dim = true;
    else if (code === 3) next.italic = true;
    else if (code === 4) next.underline = parts[1] !== "0";
    else if (code === 7) next.inverse = true;
    else if (code === 9) next.strike = true;
    else if (code === 21 || code === 22) { next.bold = false; next.dim = false; }
    else if (code === 23) next.italic = false;
    else if (code === 24) next.underline = false;
    else if (code === 27) next.inverse = false;
    else if (code === 29) next.strike = false;
    else if (code >= 30 && code <= 37) next.fg = code - 30;
    else if (code === 39) next.fg = null;
    else if (code >= 40 && code <= 47) next.bg = code - 40;
    else if (code === 49) next.bg = null;
    else if (code >= 90 && code <= 97) next.fg = code - 90 + 8;
    else if (code >= 100 && code <= 107) next.bg = code - 100 + 8;
    else if (code === 38 || code === 48) {
      const key = code === 38 ? "fg" : "bg";
      let colour;
      if (parts.length > 1) {
        // "38:2:CS:R:G:B" names a colour space first; "38:2:R:G:B" does not.
        const values = parts.slice(1).map(Number);
        if (values[0] === 2 && values.length === 5) values.splice(1, 1);
        colour = extendedColour(values);
      } else {
        colour = extendedColour(groups.slice(i + 1, i + 5).map(Number));
        if (colour) i += colour[1];
      }
      if (!colour) break;
      if (colour[0] !== undefined) next[key] = colour[0];
    }
  }
  return Object.freeze(next);
}

function isPlain(style) {
  return style === PLAIN || (
    !style.bold && !style.dim && !style.italic && !style.underline && !style.strike &&
    !style.inverse && style.fg === null && style.bg === null);
}

// Colours beyond the 16 named ones get classes made on first use, in a
// style sheet of their own (the page's policy allows no inline styles in
// markup). Past COLOUR_CLASSES distinct true colours, a colour is rounded to
// the nearest of the 256-colour palette, whose classes are never limited.
const COLOUR_CLASSES = 2048;
const colourSheet = new CSSStyleSheet();
document.adoptedStyleSheets = [...document.adoptedStyleSheets, colourSheet];
const colourClasses = new Map();
let trueColours = 0;

function colourClass(kind, colour) {
  const key = `${kind} ${colour}`;
  const known = colourClasses.get(key);
  if (known) return known;
  const palette = paletteColours.has(colour);
  if (!palette && trueColours >= COLOUR_CLASSES) {
    const [red, green, blue] = colour.match(/\d+/g).map(Number);
    const level = (value) => (value < 48 ? 0 : Math.min(5, Math.round((value - 55) / 40)));
    return colourClass(kind, paletteColour(16 + 36 * level(red) + 6 * level(green) + level(blue)));
  }
  if (!palette) trueColours++;
  const name = `ansi-${kind}-c${colourClasses.size}`;
  const property = kind === "fg" ? "color" : "background-color";
  colourSheet.insertRule(`#output .${name} { ${property}: ${colour}; }`);
  colourClasses.set(key, name);
  return name;
}

// The classes that show a style, worked out once per style.
const styleClasses = new WeakMap();

function classesOf(style) {
  let classes = styleClasses.get(style);
  if (classes !== undefined) return classes;
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) {
    [fg, bg] = [bg === null ? "inverse" : bg, fg === null ? "inverse" : fg];
  }
  const names = [];
  for (const flag of ["bold", "dim", "italic", "underline", "strike"]) {
    if (style[flag]) names.push(`ansi-${flag}`);
  }
  if (typeof fg === "number" || fg === "inverse") names.push(`ansi-fg-${fg}`);
  else if (fg !== null) names.push(colourClass("fg", fg));
  if (typeof bg === "number" || bg === "inverse") names.push(`ansi-bg-${bg}`);
  else if (bg !== null) names.push(colourClass("bg", bg));
  classes = names.join(" ");
  styleClasses.set(style, classes);
  return classes;
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

function escapeHtml(text) {
  return text.replace(/[&<>]/g, (character) => ESCAPES[character]);
}

// The line being written: runs of text with their styles, and a cursor that
// "\r" and "\b" move back so that later text overwrites.
class Line {
  constructor() {
    this.runs = [];
    this.length = 0;
    this.cursor = 0;
  }

  write(text, style) {
    if (this.cursor === this.length) {
      const last = this.runs[this.runs.length - 1];
      if (last && last.style === style) last.text += text;
      else this.runs.push({ text, style });
      this.length += codePoints(text);
      this.cursor = this.length;
      return;
    }
    const characters = this.characters();
    for (const character of text) {
      characters[this.cursor++] = { character, style };
    }
    this.setCharacters(characters);
  }

  // Erase: 0 from the cursor to the end, 1 from the start to the cursor,
  // 2 the whole line; the cursor stays.
  erase(mode) {
    const characters = this.characters();
    if (mode === 0) characters.length = Math.min(characters.length, this.cursor);
    for (let i = 0; i < characters.length; i++) {
      if (mode === 2 || (mode === 1 && i <= this.cursor)) characters[i] = { character: " ", style: PLAIN };
    }
    const cursor = this.cursor;
    this.setCharacters(characters);
    this.cursor = Math.min(cursor, this.length);
  }

  characters() {
    const characters = [];
    for (const run of this.runs) {
      for (const character of run.text) characters.push({ character, style: run.style });
    }
    return characters;
  }

  setCharacters(characters) {
    this.runs = [];
    for (const cell of characters) {
      // Stepping past the end with "\b" and "ESC [ K" can leave gaps.
      const { character, style } = cell || { character: " ", style: PLAIN };
      const last = this.runs[this.runs.length - 1];
      if (last && last.style === style) last.text += character;
      else this.runs.push({ text: character, style: style || PLAIN });
    }
    this.length = characters.length;
    this.cursor = Math.min(this.cursor, this.length);
  }

  text() {
    return this.runs.map((run) => run.text).join("");
  }
}

export class Terminal {
  // element: where the output goes. onFollowChange(following) is told when
  // the view starts or stops following the end; onTrim(lines) when lines
  // were dropped from the top.
  constructor(element, { onFollowChange = () => {}, onTrim = () => {} } = {}) {
    this.element = element;
    this.onFollowChange = onFollowChange;
    this.onTrim = onTrim;
    this.following = true;
    // Scrolling up stops following the end; scrolling back to the end
    // starts again. The page's own scrolling only ever moves down.
    this.scrolledTo = 0;
    element.addEventListener("scroll", () => {
      const top = element.scrollTop;
      const atEnd = element.scrollHeight - top - element.clientHeight < 8;
      const following = atEnd || (this.following && top >= this.scrolledTo - 2);
      this.scrolledTo = top;
      if (following !== this.following) {
        this.following = following;
        this.onFollowChange(following);
      }
    }, { passive: true });
    // A hidden page gets no animation frames: let its reader go on.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.wake("drainWaiters");
    });
    this.reset();
  }

  reset() {
    if (this.frame) cancelAnimationFrame(this.frame);
    // Whoever waits for the old output is done with it.
    if (this.drainWaiters) this.wake("drainWaiters");
    if (this.idleWaiters) this.wake("idleWaiters");
    this.frame = 0;
    this.style = PLAIN;
    this.partial = "";
    this.line = new Line();
    this.lineChanged = false;
    this.pending = [];
    this.blocks = [];
    this.linesShown = 0;
    this.linesTrimmed = 0;
    this.drainWaiters = [];
    this.idleWaiters = [];
    this.element.replaceChildren();
    this.liveLine = document.createElement("span");
    this.liveLine.className = "live-line";
    this.element.append(this.liveLine);
    this.follow();
  }

  follow() {
    if (!this.following) {
      this.following = true;
      this.onFollowChange(true);
    }
    this.scrollToEnd();
  }

  scrollToEnd() {
    this.element.scrollTop = this.element.scrollHeight;
    this.scrolledTo = this.element.scrollTop;
  }

  // Take more decoded output. Resolves once the page has caught up enough
  // to take more, so that a reader can wait before reading on.
  write(text) {
    text = this.partial + text;
    this.partial = "";
    let i = 0;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (code >= 0x20 && code !== 0x7f) {
        let end = i + 1;
        while (end < text.length) {
          const next = text.charCodeAt(end);
          if (next < 0x20 || next === 0x7f) break;
          end++;
        }
        // Wrap as a terminal does: only when more comes after a full line.
        if (this.line.cursor >= WRAP) this.newLine();
        const room = WRAP - this.line.cursor;
        if (end - i > room) {
          end = i + room;
          // Never between the halves of a surrogate pair.
          const last = text.charCodeAt(end - 1);
          if (last >= 0xd800 && last <= 0xdbff && end - i > 1) end--;
        }
        this.line.write(text.slice(i, end), this.style);
        this.lineChanged = true;
        i = end;
      } else if (code === 0x0a) {
        this.newLine();
        i++;
      } else if (code === 0x0d) {
        this.line.cursor = 0;
        i++;
      } else if (code === 0x08) {
        this.line.cursor = Math.max(0, this.line.cursor - 1);
        i++;
      } else if (code === 0x09) {
        this.line.write("\t", this.style);
        this.lineChanged = true;
        i++;
      } else if (code === 0x1b) {
        const consumed = this.escape(text, i);
        if (consumed === 0) {
          this.partial = text.slice(i);
          break;
        }
        i += consumed;
      } else {
        i++;
      }
    }
    if (this.pending.length > MAX_LINES) {
      // More than would be kept came in before it could be drawn, as in a
      // hidden tab, where nothing is drawn: drop the oldest.
      const excess = this.pending.length - MAX_LINES;
      this.pending.splice(0, excess);
      this.dropped(excess);
    }
    this.schedule();
    if (this.pending.length < PENDING_LIMIT || document.hidden) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  newLine() {
    this.pending.push(this.line.runs);
    this.line = new Line();
    this.lineChanged = true;
  }

  // Handle the escape sequence at text[start]: the number of characters it
  // takes, or 0 when it is not complete yet.
  escape(text, start) {
    if (start + 1 >= text.length) return 0;
    const kind = text[start + 1];
    if (kind === "[") {
      // Parameters and intermediates, then one final character. Any other
      // character ends a broken sequence: what came before it is dropped,
      // and it is shown.
      let end = start + 2;
      while (end < text.length) {
        const code = text.charCodeAt(end);
        if (code >= 0x40 && code <= 0x7e) break;
        if (code < 0x20 || code > 0x3f) return end - start;
        end++;
      }
      if (end >= text.length) return end - start > 64 ? end - start : 0;
      const parameters = text.slice(start + 2, end);
      const final = text[end];
      if (final === "m" && /^[\d;:]*$/.test(parameters)) {
        this.style = applySgr(this.style, parameters);
      } else if (final === "K") {
        this.line.erase(Number(parameters) || 0);
        this.lineChanged = true;
      }
      return end + 1 - start;
    }
    if ("]PX^_".includes(kind)) {
      // A string: an operating system command such as a window title, or
      // device control; it ends with ST (ESC \\), or BEL for a command.
      const terminator = text.indexOf("\x1b\\", start + 2);
      const bell = kind === "]" ? text.indexOf("\x07", start + 2) : -1;
      const ends = [
        terminator === -1 ? Infinity : terminator + 2,
        bell === -1 ? Infinity : bell + 1,
      ];
      const end = Math.min(...ends);
      if (end === Infinity) return text.length - start > 4096 ? text.length - start : 0;
      return end - start;
    }
    if ("()*+-./#%".includes(kind)) {
      // Character set and similar choices take one more character.
      return start + 2 < text.length ? 3 : 0;
    }
    return 2;
  }

  // The output ended: show what is left, the unfinished line included.
  // Resolves once all of it is on the page.
  end() {
    if (this.partial) {
      this.line.write(this.partial.replace(/\x1b/g, ""), this.style);
      this.partial = "";
      this.lineChanged = true;
    }
    this.schedule();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  // Append up to FRAME_LINES finished lines, redraw the line being written,
  // drop lines beyond MAX_LINES, and keep the end in view when following.
  render() {
    this.frame = 0;
    let count = 0;
    let spans = 0;
    while (count < this.pending.length && count < FRAME_LINES && spans < FRAME_SPANS) {
      const runs = this.pending[count++];
      if (runs.length > 1 || (runs.length === 1 && !isPlain(runs[0].style))) spans += runs.length;
    }
    const lines = this.pending.splice(0, count);
    let index = 0;
    while (index < lines.length) {
      let block = this.blocks[this.blocks.length - 1];
      if (!block || block.lines >= BLOCK_LINES) {
        const element = document.createElement("span");
        element.className = "block";
        this.element.insertBefore(element, this.liveLine);
        block = { element, lines: 0 };
        this.blocks.push(block);
      }
      const take = Math.min(BLOCK_LINES - block.lines, lines.length - index);
      block.element.insertAdjacentHTML("beforeend", this.markup(lines, index, index + take));
      block.lines += take;
      this.linesShown += take;
      index += take;
    }
    if (this.lineChanged && this.pending.length === 0) {
      this.liveLine.innerHTML = this.markup([this.line.runs], 0, 1, false);
      this.lineChanged = false;
    }
    this.trim();
    if (this.following) this.scrollToEnd();
    if (this.pending.length > 0 || this.lineChanged) this.schedule();
    if (this.pending.length < PENDING_LIMIT) this.wake("drainWaiters");
    if (this.pending.length === 0 && !this.lineChanged) this.wake("idleWaiters");
  }

  wake(kind) {
    const waiters = this[kind];
    this[kind] = [];
    for (const resolve of waiters) resolve();
  }

  // Lines as markup: parsing one string is far quicker than making each
  // styled run an element by hand. Text is escaped; classes are Taru's own.
  markup(lines, from, to, newlines = true) {
    let html = "";
    for (let i = from; i < to; i++) {
      for (const run of lines[i]) {
        const text = escapeHtml(run.text);
        html += isPlain(run.style) ? text : `<span class="${classesOf(run.style)}">${text}</span>`;
      }
      if (newlines) html += "\n";
    }
    return html;
  }

  // Drop the oldest blocks beyond MAX_LINES. Someone reading further up
  // keeps their place: the browser's scroll anchoring sees to it.
  trim() {
    while (this.linesShown > MAX_LINES && this.blocks.length > 1) {
      const [block] = this.blocks.splice(0, 1);
      block.element.remove();
      this.linesShown -= block.lines;
      this.dropped(block.lines);
    }
    this.scrolledTo = Math.min(this.scrolledTo, this.element.scrollTop);
  }

  dropped(lines) {
    this.linesTrimmed += lines;
    this.onTrim(this.linesTrimmed);
  }
}
