// The API explorer (/api/v1/docs): Swagger UI from the platform's own files (no CDN, no inline
// script, so the page's Content-Security-Policy allows scripts from 'self' only).
window.addEventListener('load', () => {
  const el = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: el.dataset.openapi,
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
