// `GET /`: the daemon's search page. Plain HTML and a little script, served as it is: nothing
// to build. It searches through `/api/search` and shows each result's thumbnail, camera, time
// range, label and score; `/?q=TEXT&camera=C&since=T&until=T` opens with that search run.
let searchPage = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>segwatch search</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .8em; }
  form { display: flex; flex-wrap: wrap; gap: .5em; align-items: end; margin-bottom: 1em; }
  label { display: flex; flex-direction: column; font-size: .85em; color: #555; }
  input { font: inherit; padding: .35em .5em; border: 1px solid #bbb; border-radius: 4px; }
  input[name=q] { width: 22em; }
  button { font: inherit; padding: .4em 1em; border: 0; border-radius: 4px; background: #2a6; color: white; cursor: pointer; }
  #status { color: #555; margin-bottom: .8em; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: .8em; }
  .result { background: white; border: 1px solid #ddd; border-radius: 6px; padding: .5em; font-size: .85em; }
  .result img { display: block; max-width: 100%; max-height: 160px; margin: 0 auto .4em; }
  .score { font-weight: 600; }
  .error { color: #b00; }
</style>
</head>
<body>
<h1>segwatch: search the past</h1>
<form id="search">
  <label>What to look for <input name="q" placeholder="a red bicycle" required></label>
  <label>Camera <input name="camera" placeholder="all"></label>
  <label>Since <input name="since" placeholder="24h, 2026-12-06"></label>
  <label>Until <input name="until" placeholder="now"></label>
  <button type="submit">Search</button>
</form>
<div id="status"></div>
<div id="results"></div>
<script>
const form = document.getElementById("search");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

async function search(parameters) {
  results.replaceChildren();
  statusLine.className = "";
  statusLine.textContent = "searching…";
  const query = new URLSearchParams();
  for (const [key, value] of parameters) if (value.trim() !== "") query.set(key, value.trim());
  query.set("limit", "50");
  try {
    const response = await fetch("/api/search?" + query.toString());
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    statusLine.textContent = body.results.length + " of " + body.searched + " tracks";
    for (const result of body.results) {
      const card = document.createElement("div");
      card.className = "result";
      card.dataset.track = result.track;
      card.dataset.camera = result.camera;
      if (result.thumbnail) {
        const image = document.createElement("img");
        image.src = result.thumbnail;
        image.alt = result.label;
        card.append(image);
      }
      card.append(text("div", result.score.toFixed(4) + " · #" + result.rank, "score"));
      card.append(text("div", result.camera + " · track " + result.track));
      card.append(text("div", result.start.replace("T", " ").slice(0, 19) + " – " + result.end.slice(11, 19)));
      const relabeled = result.labelings.length ? " (" + result.labelings[result.labelings.length - 1].label + ")" : "";
      card.append(text("div", result.label + relabeled));
      results.append(card);
    }
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = String(error.message || error);
  }
}

form.addEventListener("submit", event => {
  event.preventDefault();
  const parameters = new FormData(form);
  history.replaceState(null, "", "/?" + new URLSearchParams(parameters).toString());
  search(parameters);
});

const opened = new URLSearchParams(location.search);
for (const [key, value] of opened) if (form.elements[key]) form.elements[key].value = value;
if (opened.get("q")) search(new FormData(form));
</script>
</body>
</html>
"""#
