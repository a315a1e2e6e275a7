// Saving a task's output as a file, under the name the task's
// content-disposition header gives.

// The file name a content-disposition header value names, or null.
export function filenameFrom(disposition) {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*([\w!#$&+.^`|~-]+)'[^']*'([^;\s]+)/i.exec(disposition);
  let name = null;
  if (extended) {
    const [, charset, encoded] = extended;
    try {
      name = charset.toLowerCase() === "utf-8"
        ? decodeURIComponent(encoded)
        : encoded.replace(/%([0-9a-f]{2})/gi, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
    } catch {
      name = null;
    }
  }
  if (name === null) {
    const quoted = /filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(disposition);
    const token = /filename\s*=\s*([^";\s]+)/i.exec(disposition);
    if (quoted) name = quoted[1].replace(/\\(.)/g, "$1");
    else if (token) name = token[1];
  }
  if (name === null) return null;
  // A file name, never a path.
  name = name.replace(/[/\\\0-\x1f]/g, "_").trim();
  return name && name !== "." && name !== ".." ? name : null;
}

export async function save(response, fallback) {
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filenameFrom(response.headers.get("content-disposition")) || fallback;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}
