import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '../styles.css';
import './mobile.css';
import './messages';
import { MobileApp } from './App';

if ('serviceWorker' in navigator) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('/m/sw.js', { scope: '/m/' }).catch(() => undefined);
  });
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MobileApp />
  </StrictMode>,
);
