/**
 * Jest for the pure modules (types, urls, status, render, model) under jsdom.
 * ts-jest compiles them to CommonJS; modules importing @jupyterlab/* (ES
 * modules) are not unit-tested here.
 */
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  moduleFileExtensions: ['ts', 'tsx', 'js', 'json'],
  transform: {
    '^.+\\.tsx?$': [
      'ts-jest',
      {
        tsconfig: {
          module: 'commonjs',
          target: 'ES2018',
          esModuleInterop: true,
          strict: true,
          types: ['jest']
        }
      }
    ]
  },
  collectCoverageFrom: ['src/**/*.ts', '!src/**/*.d.ts', '!src/**/__tests__/**']
};
