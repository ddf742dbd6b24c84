// The example site's page tool for the agent (README "Page tools"): "show me the cargo bike".
// The persona Ben declares `show_product` (manage.py seed_demo); this is the page's half.
const script = document.querySelector('script[data-product-url]');

function showProduct({ product }) {
  const slug = String(product || '').trim().toLowerCase().replace(/\s+/g, '-');
  const url = script.dataset.productUrl.replace('SLUG', encodeURIComponent(slug));
  if (location.pathname === new URL(url, location.href).pathname) {
    return 'The visitor is already looking at this bike.';
  }
  const card = document.getElementById(`bike-${slug}`);
  if (card) {
    card.scrollIntoView({ behavior: 'smooth', block: 'center' });
    card.classList.add('card-shown');
    setTimeout(() => card.classList.remove('card-shown'), 4000);
    return `Shown on this page: ${card.querySelector('h2').textContent.trim()}.`;
  }
  // Another page: open the bike's page once the agent has had a moment to say so.
  setTimeout(() => location.assign(url), 2500);
  return 'Opening the bike\'s page in a moment.';
}

customElements.whenDefined('voice-widget').then(() => {
  for (const widget of document.querySelectorAll('voice-widget')) {
    widget.registerTool('show_product', { description: 'Show a bike to the visitor.' }, showProduct);
  }
});
