// The charts of an eval comparison report (pipeline/report.py inlines this file).
const data = JSON.parse(document.getElementById('data').textContent);
const A = '#5470c6', B = '#ee6666';
const shown = data.metrics.filter(m => m.n > 0);
const deltas = document.getElementById('deltas');
deltas.height = 40 + 26 * shown.length;
new Chart(deltas, {type: 'bar', data: {labels: shown.map(m => m.metric + (m.judge ? ' [' + m.judge + ']' : '')),
  datasets: [{label: 'B - A, 95% interval', data: shown.map(m => [m.low, m.high]),
    backgroundColor: shown.map(m => m.verdict === 'better' ? '#3ba272' : m.verdict === 'worse' ? '#ee6666' : '#bbb')}]},
  options: {indexAxis: 'y', animation: false, responsive: false, plugins: {legend: {display: false}}}});
const grid = document.getElementById('charts');
for (const m of shown) {
  const card = document.createElement('div'); card.className = 'card';
  const canvas = document.createElement('canvas'); canvas.width = 260; canvas.height = 180;
  card.appendChild(canvas); grid.appendChild(card);
  new Chart(canvas, {type: 'bar', data: {labels: ['A', 'B'],
    datasets: [{data: [m.a, m.b], backgroundColor: [A, B]}]},
    options: {animation: false, responsive: false, plugins: {legend: {display: false},
      title: {display: true, text: m.metric + (m.judge ? ' [' + m.judge + ']' : '') + ' (' + (m.direction === 'higher' ? 'higher' : 'lower') + ' is better)'}}}});
}
